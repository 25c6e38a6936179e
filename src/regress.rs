//! Deliberate regressions, for the performance gate's self-test only (`make bench-selftest`,
//! `bench/`): each cargo feature adds one, sized by a number the self-test computes from the
//! committed baseline and passes at build time (`SCINIT_REGRESS_*`, decimal), and the self-test
//! checks that `make bench-check` flags it. Never built otherwise.

/// A decimal number from the build environment; anything but digits is skipped.
const fn number(text: &str) -> u64 {
    let bytes = text.as_bytes();
    let mut value = 0u64;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            value = value.saturating_mul(10).saturating_add((bytes[i] - b'0') as u64);
        }
        i += 1;
    }
    value
}

/// Burns `SCINIT_REGRESS_FORWARD_CPU` instructions: a loop of exactly two (`dec`, `jnz`) per
/// round, which the optimiser cannot shorten.
#[cfg(feature = "regress-forward-cpu")]
pub fn forward_cpu() {
    const ROUNDS: u64 = number(env!("SCINIT_REGRESS_FORWARD_CPU")).div_ceil(2);
    if ROUNDS > 0 {
        // SAFETY: counts a scratch register down to zero; touches no memory and no stack.
        unsafe {
            std::arch::asm!(
                "2:",
                "dec {n}",
                "jnz 2b",
                n = inout(reg) ROUNDS => _,
                options(nomem, nostack),
            );
        }
    }
}

/// Holds the forwarding path for `SCINIT_REGRESS_FORWARD_SLEEP_NS`. Not `nanosleep`: on the
/// gate's machine it never returns in less than about 21 µs (even with a 1 ns timer slack),
/// more than the whole median it is meant to add a tenth to. The clock is read through the
/// system call, not the vDSO, so that the wait is spent in the kernel as a sleep's is, and adds
/// few of the instructions callgrind counts.
#[cfg(feature = "regress-forward-sleep")]
pub fn forward_sleep() {
    const NANOS: u64 = number(env!("SCINIT_REGRESS_FORWARD_SLEEP_NS"));
    let now = || {
        let mut time = nix::libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: `time` is a valid out-pointer for the duration of the call.
        unsafe {
            nix::libc::syscall(nix::libc::SYS_clock_gettime, nix::libc::CLOCK_MONOTONIC, &mut time)
        };
        (time.tv_sec as u64).saturating_mul(1_000_000_000).saturating_add(time.tv_nsec as u64)
    };
    let until = now().saturating_add(NANOS);
    while now() < until {}
}

/// Maps `SCINIT_REGRESS_IDLE_MEMORY` bytes of fresh anonymous memory, resident from the start
/// (`MAP_POPULATE`: the kernel faults every page in, without a store of ours per byte) and held
/// for scinit's whole life: never unmapped.
#[cfg(feature = "regress-idle-memory")]
pub fn idle_memory() {
    use nix::libc;
    const BYTES: u64 = number(env!("SCINIT_REGRESS_IDLE_MEMORY"));
    // SAFETY: a new private anonymous mapping, chosen by the kernel, overlapping nothing; its
    // address is dropped on purpose.
    unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            BYTES as usize,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
            -1,
            0,
        )
    };
}
