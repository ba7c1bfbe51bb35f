set terminal pngcairo size 1100,600 noenhanced
set grid
set key outside right top vertical noenhanced
set ylabel "accuracy on the global test set"
set output 'docs/fleet_plots/fedgkt/accuracy_vs_round.png'
set xlabel 'round'
plot "docs/fleet_plots/fedgkt/run0.dat" using 1:3:4 with filledcurves fs transparent solid 0.2 noborder lc 1 notitle, "docs/fleet_plots/fedgkt/run0.dat" using 1:2 with linespoints pt 7 ps 0.5 lw 2 lc 1 title "fedgkt (3 seeds)", "docs/fleet_plots/fedgkt/run1.dat" using 1:3:4 with filledcurves fs transparent solid 0.2 noborder lc 2 notitle, "docs/fleet_plots/fedgkt/run1.dat" using 1:2 with linespoints pt 7 ps 0.5 lw 2 lc 2 title "fedavg_resnet56 (3 seeds)"
set output 'docs/fleet_plots/fedgkt/accuracy_vs_bytes.png'
set xlabel 'bytes exchanged, up + down, cumulative (MB)'
set logscale x
plot "docs/fleet_plots/fedgkt/run0.dat" using 5:3:4 with filledcurves fs transparent solid 0.2 noborder lc 1 notitle, "docs/fleet_plots/fedgkt/run0.dat" using 5:2 with linespoints pt 7 ps 0.5 lw 2 lc 1 title "fedgkt (3 seeds)", "docs/fleet_plots/fedgkt/run1.dat" using 5:3:4 with filledcurves fs transparent solid 0.2 noborder lc 2 notitle, "docs/fleet_plots/fedgkt/run1.dat" using 5:2 with linespoints pt 7 ps 0.5 lw 2 lc 2 title "fedavg_resnet56 (3 seeds)"
set output 'docs/fleet_plots/fedgkt/accuracy_vs_sim_time.png'
set xlabel 'simulated time on the fleet, cumulative (minutes)'
set logscale x
plot "docs/fleet_plots/fedgkt/run0.dat" using 6:3:4 with filledcurves fs transparent solid 0.2 noborder lc 1 notitle, "docs/fleet_plots/fedgkt/run0.dat" using 6:2 with linespoints pt 7 ps 0.5 lw 2 lc 1 title "fedgkt (3 seeds)", "docs/fleet_plots/fedgkt/run1.dat" using 6:3:4 with filledcurves fs transparent solid 0.2 noborder lc 2 notitle, "docs/fleet_plots/fedgkt/run1.dat" using 6:2 with linespoints pt 7 ps 0.5 lw 2 lc 2 title "fedavg_resnet56 (3 seeds)"
