#include "fedpp/runtime/fleet_builtin.hpp"

namespace fedpp {

// Units: multiply-adds per second (1 MAC = 2 FLOP), bytes per second, seconds. Where a source
// gives a peak or no figure at all, the comment says which assumption fills the gap; docs/fleet.md
// lists every figure with its source. The server of every fleet is one data-centre GPU.
const std::map<std::string, std::string>& builtin_fleets() {
  static const std::map<std::string, std::string> fleets = {
      {"phones_4g", R"(name = "phones_4g"
source = "smartphones on LTE: Das et al. 2022 (arXiv 2202.10100), OpenSignal State of LTE 2016/2017, Ookla (via press) 2020/2022, Bonawitz et al. MLSys 2019; see docs/fleet.md"
[server]
compute_macs_per_s = 5e12   # A100 FP32 peak 19.5 TFLOP/s, at about half of peak
[[class]]
name = "phone_high"
share = 0.2                 # assumption (no source for the tier mix)
compute_macs_per_s = 7.5e9  # 15 GFLOP/s: CPU training on a Snapdragon 8-series phone (Das et al.)
down_bytes_per_s = 5.75e6   # 46 Mbit/s: fastest national 4G averages (OpenSignal 2017)
up_bytes_per_s = 1.8e6      # 0.31 x down: mobile upload/download ratio (Ookla, Sept 2020)
latency_s = 0.1             # about 3 round trips (TCP, TLS, request) of 28-40 ms (Ookla medians)
availability = 0.5          # assumption: idle, charging and unmetered (Bonawitz et al.: 4x daily swing)
[[class]]
name = "phone_mid"
share = 0.5
compute_macs_per_s = 5e9    # 2/3 of high: the LEAF/FLASH tier ratio 150:100:50 (an assumption)
down_bytes_per_s = 2.1e6    # 16.6 Mbit/s: global 4G average (OpenSignal, Nov 2017)
up_bytes_per_s = 0.65e6     # 0.31 x down
latency_s = 0.1
availability = 0.5
[[class]]
name = "phone_low"
share = 0.3
compute_macs_per_s = 2.5e9  # 1/3 of high (LEAF/FLASH tier ratio)
down_bytes_per_s = 0.8e6    # 6.4 Mbit/s: slowest national 4G average (OpenSignal 2016, India)
up_bytes_per_s = 0.25e6     # 0.31 x down
latency_s = 0.1
availability = 0.5
)"},
      {"iot_narrowband", R"(name = "iot_narrowband"
source = "Raspberry Pi 4 class boards on LTE-M and NB-IoT: HPL on a Pi 4 (feiereisen.net), LTE-M/NB-IoT rates (iotclass.org, Anritsu), NB-IoT latency (Ugwuanyi et al. 2021), LTE-M latency white paper; see docs/fleet.md"
[server]
compute_macs_per_s = 5e12
[[class]]
name = "board_ltem"
share = 0.5                 # assumption
compute_macs_per_s = 2e9    # Pi 4: ~8 GFLOP/s HPL (FP64); training is memory-bound, taken as half
down_bytes_per_s = 125e3    # LTE-M peak 1 Mbit/s
up_bytes_per_s = 125e3
latency_s = 0.3             # about 3 round trips of 0.1 s (LTE-M at the edge of normal coverage)
availability = 0.9          # assumption: mains-powered boards, occasional outages
[[class]]
name = "board_nbiot"
share = 0.5
compute_macs_per_s = 2e9
down_bytes_per_s = 6.25e3   # 50 kbit/s: top of NB-IoT's practical 5-50 kbit/s
up_bytes_per_s = 6.25e3
latency_s = 2.5             # about 3 round trips of 0.84 s (NB-IoT testbed, Ugwuanyi et al.)
availability = 0.9
)"},
      {"cross_silo", R"(name = "cross_silo"
source = "institutions with a data-centre GPU or CPU server on a WAN: A100 datasheet, AWS inter-region RTTs (2017); link speed and availability are assumptions; see docs/fleet.md"
[server]
compute_macs_per_s = 5e12
[[class]]
name = "silo_gpu"
share = 0.5                 # assumption
compute_macs_per_s = 5e12   # A100 FP32 peak 19.5 TFLOP/s, at about half of peak
down_bytes_per_s = 125e6    # assumption: 1 Gbit/s
up_bytes_per_s = 125e6
latency_s = 0.25            # about 3 round trips of 80 ms (us-east to eu-west)
availability = 1.0          # assumption: always on
[[class]]
name = "silo_cpu"
share = 0.5
compute_macs_per_s = 2.5e11 # assumption: a 32-core CPU server, ~1/20 of the GPU
down_bytes_per_s = 125e6
up_bytes_per_s = 125e6
latency_s = 0.25
availability = 1.0
)"},
  };
  return fleets;
}

}  // namespace fedpp
