set terminal pngcairo size 900,600
set grid
set key bottom right
set ylabel 'accuracy'
set output 'docs/compression/accuracy_vs_round.png'
set xlabel 'round'
plot 'docs/compression/run0.dat' using 1:2 with linespoints title 'cnn_hadamard_s0.5_q2_r0.25_downhadamard_s1_q8', 'docs/compression/run1.dat' using 1:2 with linespoints title 'cnn_hadamard_s0.5_q2_r0.5_downhadamard_s1_q8', 'docs/compression/run2.dat' using 1:2 with linespoints title 'cnn_hadamard_s0.5_q4_r0.25_downhadamard_s1_q4', 'docs/compression/run3.dat' using 1:2 with linespoints title 'cnn_hadamard_s0.5_q4_r0.25_downhadamard_s1_q4_seed2', 'docs/compression/run4.dat' using 1:2 with linespoints title 'cnn_hadamard_s0.5_q4_r0.25_downhadamard_s1_q4_seed3', 'docs/compression/run5.dat' using 1:2 with linespoints title 'cnn_none_r0', 'docs/compression/run6.dat' using 1:2 with linespoints title 'cnn_none_r0.25', 'docs/compression/run7.dat' using 1:2 with linespoints title 'cnn_none_r0_seed2', 'docs/compression/run8.dat' using 1:2 with linespoints title 'cnn_none_r0_seed3'
set output 'docs/compression/accuracy_vs_bytes.png'
set xlabel 'bytes exchanged, up + down (MB, cumulative)'
set logscale x
plot 'docs/compression/run0.dat' using 3:2 with linespoints title 'cnn_hadamard_s0.5_q2_r0.25_downhadamard_s1_q8', 'docs/compression/run1.dat' using 3:2 with linespoints title 'cnn_hadamard_s0.5_q2_r0.5_downhadamard_s1_q8', 'docs/compression/run2.dat' using 3:2 with linespoints title 'cnn_hadamard_s0.5_q4_r0.25_downhadamard_s1_q4', 'docs/compression/run3.dat' using 3:2 with linespoints title 'cnn_hadamard_s0.5_q4_r0.25_downhadamard_s1_q4_seed2', 'docs/compression/run4.dat' using 3:2 with linespoints title 'cnn_hadamard_s0.5_q4_r0.25_downhadamard_s1_q4_seed3', 'docs/compression/run5.dat' using 3:2 with linespoints title 'cnn_none_r0', 'docs/compression/run6.dat' using 3:2 with linespoints title 'cnn_none_r0.25', 'docs/compression/run7.dat' using 3:2 with linespoints title 'cnn_none_r0_seed2', 'docs/compression/run8.dat' using 3:2 with linespoints title 'cnn_none_r0_seed3'
