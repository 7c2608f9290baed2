// Division by a divisor fixed for the whole dispatch, as a multiply-high and shifts
// (Granlund & Montgomery 1994, "Division by invariant integers using multiplication", fig. 4.1):
// exact for every 32-bit n. CPU drivers run a true integer division lane by lane, tens of
// cycles each; this is a handful of vector instructions. The host computes (magic, log) with
// `fastdiv::magic` in src/ops/fastdiv.rs: log = ceil(log2 d), magic = floor(2^32 (2^log - d) / d) + 1.
uint fast_div(uint n, uint magic, uint log) {
    uint hi, lo;
    umulExtended(n, magic, hi, lo);
    uint sh1 = min(log, 1u);
    uint sh2 = max(log, 1u) - 1u;
    return (hi + ((n - hi) >> sh1)) >> sh2;
}
