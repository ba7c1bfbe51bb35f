set terminal pngcairo size 900,600
set grid
set key bottom right
set ylabel 'personal_accuracy_mean'
set output 'docs/hetero_plots/pat-N10-het/accuracy_vs_round.png'
set xlabel 'round'
plot 'docs/hetero_plots/pat-N10-het/run0.dat' using 1:2 with linespoints title 'fedmoe', 'docs/hetero_plots/pat-N10-het/run1.dat' using 1:2 with linespoints title 'standalone', 'docs/hetero_plots/pat-N10-het/run2.dat' using 1:2 with linespoints title 'lgfedavg', 'docs/hetero_plots/pat-N10-het/run3.dat' using 1:2 with linespoints title 'fedgh', 'docs/hetero_plots/pat-N10-het/run4.dat' using 1:2 with linespoints title 'fedproto', 'docs/hetero_plots/pat-N10-het/run5.dat' using 1:2 with linespoints title 'fd', 'docs/hetero_plots/pat-N10-het/run6.dat' using 1:2 with linespoints title 'fml', 'docs/hetero_plots/pat-N10-het/run7.dat' using 1:2 with linespoints title 'fedkd'
set output 'docs/hetero_plots/pat-N10-het/accuracy_vs_bytes.png'
set xlabel 'bytes exchanged, up + down (MB, cumulative)'
set logscale x
plot 'docs/hetero_plots/pat-N10-het/run0.dat' using 3:2 with linespoints title 'fedmoe', 'docs/hetero_plots/pat-N10-het/run1.dat' using 3:2 with linespoints title 'standalone', 'docs/hetero_plots/pat-N10-het/run2.dat' using 3:2 with linespoints title 'lgfedavg', 'docs/hetero_plots/pat-N10-het/run3.dat' using 3:2 with linespoints title 'fedgh', 'docs/hetero_plots/pat-N10-het/run4.dat' using 3:2 with linespoints title 'fedproto', 'docs/hetero_plots/pat-N10-het/run5.dat' using 3:2 with linespoints title 'fd', 'docs/hetero_plots/pat-N10-het/run6.dat' using 3:2 with linespoints title 'fml', 'docs/hetero_plots/pat-N10-het/run7.dat' using 3:2 with linespoints title 'fedkd'
