set terminal pngcairo size 1100,600 noenhanced
set grid
set key outside right top vertical noenhanced
set ylabel "personalised accuracy (mean over clients)"
set output 'docs/hetero_plots/hetero_n50_pathological/accuracy_vs_round.png'
set xlabel 'round'
plot "docs/hetero_plots/hetero_n50_pathological/run0.dat" using 1:3:4 with filledcurves fs transparent solid 0.2 noborder lc 1 notitle, "docs/hetero_plots/hetero_n50_pathological/run0.dat" using 1:2 with linespoints pt 7 ps 0.5 lw 2 lc 1 title "fedmoe,data.partition=pathological (3 seeds)", "docs/hetero_plots/hetero_n50_pathological/run1.dat" using 1:3:4 with filledcurves fs transparent solid 0.2 noborder lc 2 notitle, "docs/hetero_plots/hetero_n50_pathological/run1.dat" using 1:2 with linespoints pt 7 ps 0.5 lw 2 lc 2 title "fedproto,data.partition=pathological (3 seeds)", "docs/hetero_plots/hetero_n50_pathological/run2.dat" using 1:3:4 with filledcurves fs transparent solid 0.2 noborder lc 3 notitle, "docs/hetero_plots/hetero_n50_pathological/run2.dat" using 1:2 with linespoints pt 7 ps 0.5 lw 2 lc 3 title "fd,data.partition=pathological (3 seeds)"
set output 'docs/hetero_plots/hetero_n50_pathological/accuracy_vs_bytes.png'
set xlabel 'bytes exchanged, up + down, cumulative (MB)'
set logscale x
plot "docs/hetero_plots/hetero_n50_pathological/run0.dat" using 5:3:4 with filledcurves fs transparent solid 0.2 noborder lc 1 notitle, "docs/hetero_plots/hetero_n50_pathological/run0.dat" using 5:2 with linespoints pt 7 ps 0.5 lw 2 lc 1 title "fedmoe,data.partition=pathological (3 seeds)", "docs/hetero_plots/hetero_n50_pathological/run1.dat" using 5:3:4 with filledcurves fs transparent solid 0.2 noborder lc 2 notitle, "docs/hetero_plots/hetero_n50_pathological/run1.dat" using 5:2 with linespoints pt 7 ps 0.5 lw 2 lc 2 title "fedproto,data.partition=pathological (3 seeds)", "docs/hetero_plots/hetero_n50_pathological/run2.dat" using 5:3:4 with filledcurves fs transparent solid 0.2 noborder lc 3 notitle, "docs/hetero_plots/hetero_n50_pathological/run2.dat" using 5:2 with linespoints pt 7 ps 0.5 lw 2 lc 3 title "fd,data.partition=pathological (3 seeds)"
