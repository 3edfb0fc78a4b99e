//! Pinning the calling thread to CPUs (`sched_setaffinity`) and reading its affinity back.
//!
//! CPU numbers are the kernel's (those of [`super::topology`]); at most `CPU_SETSIZE` (1024) CPUs
//! are addressable, as with glibc's fixed-size `cpu_set_t`.

use crate::error::{Error, Result};

/// The number of CPUs a CPU set can name (glibc's `CPU_SETSIZE`).
pub const MAX_CPUS: u32 = libc::CPU_SETSIZE as u32;

/// Restricts the calling thread to `cpus`: the kernel schedules it only there from now on.
///
/// Fails with [`Error::InvalidArgument`] when `cpus` is empty, names a CPU of
/// [`MAX_CPUS`] or more, or when none of them is online and allowed to this process (the kernel
/// refuses the set; the thread's affinity is unchanged then).
pub fn pin_current_thread(cpus: &[u32]) -> Result<()> {
    if cpus.is_empty() {
        return Err(Error::InvalidArgument(
            "pinning needs at least one CPU".into(),
        ));
    }
    // SAFETY: cpu_set_t is a plain bit array; all zeroes is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &cpu in cpus {
        if cpu >= MAX_CPUS {
            return Err(Error::InvalidArgument(format!(
                "CPU {cpu} is out of range (at most {} CPUs can be named)",
                MAX_CPUS
            )));
        }
        // SAFETY: `cpu < CPU_SETSIZE`, so the bit is inside the set.
        unsafe { libc::CPU_SET(cpu as usize, &mut set) };
    }
    // SAFETY: pid 0 is the calling thread; `set` is a valid cpu_set_t of the size passed.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc == 0 {
        return Ok(());
    }
    let os = std::io::Error::last_os_error();
    match os.raw_os_error() {
        Some(libc::EINVAL) => Err(Error::InvalidArgument(format!(
            "cannot pin to CPUs {}: none of them is online and allowed to this process ({os})",
            super::topology::format_cpu_list(cpus)
        ))),
        _ => Err(Error::Internal(format!("sched_setaffinity failed: {os}"))),
    }
}

/// The CPUs the calling thread may run on, ascending.
pub fn current_thread_affinity() -> Result<Vec<u32>> {
    // SAFETY: cpu_set_t is a plain bit array; all zeroes is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: pid 0 is the calling thread; `set` is writable and of the size passed.
    let rc =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        let os = std::io::Error::last_os_error();
        return Err(Error::Internal(format!("sched_getaffinity failed: {os}")));
    }
    Ok((0..MAX_CPUS)
        // SAFETY: `cpu < CPU_SETSIZE`, so the bit is inside the set.
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu as usize, &set) })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_pinned_to_one_allowed_cpu_reads_it_back() {
        std::thread::spawn(|| {
            let allowed = current_thread_affinity().unwrap();
            assert!(!allowed.is_empty());
            let last = *allowed.last().unwrap();
            pin_current_thread(&[last]).unwrap();
            assert_eq!(current_thread_affinity().unwrap(), [last]);
            // Back to everything allowed before.
            pin_current_thread(&allowed).unwrap();
            assert_eq!(current_thread_affinity().unwrap(), allowed);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn bad_cpu_sets_are_refused_and_change_nothing() {
        std::thread::spawn(|| {
            let before = current_thread_affinity().unwrap();
            assert!(matches!(
                pin_current_thread(&[]),
                Err(Error::InvalidArgument(_))
            ));
            assert!(matches!(
                pin_current_thread(&[MAX_CPUS]),
                Err(Error::InvalidArgument(_))
            ));
            // CPU 1023 exists on almost no machine: the kernel refuses a set of offline CPUs.
            if !before.contains(&(MAX_CPUS - 1)) {
                let err = pin_current_thread(&[MAX_CPUS - 1]).unwrap_err();
                assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
            }
            assert_eq!(current_thread_affinity().unwrap(), before);
        })
        .join()
        .unwrap();
    }
}
