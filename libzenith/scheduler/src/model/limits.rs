//! The limits every spec is checked against. They are generous; they exist so that a bad input
//! is an error with a clear message, never an allocation of arbitrary size.

/// Longest name of a job, node, user, queue, cohort or GPU type, in bytes.
pub const MAX_NAME_LEN: usize = 253;
/// Longest label value (rack, switch, zone), in bytes.
pub const MAX_LABEL_LEN: usize = 63;
/// Most GPUs on one node.
pub const MAX_GPUS_PER_NODE: usize = 256;
/// Most GPUs one gang member asks for.
pub const MAX_GPUS_PER_MEMBER: u32 = 256;
/// Most members in one gang.
pub const MAX_GANG_SIZE: u32 = 65_536;
/// Largest CPU amount of a node or a member, in milli-CPUs (one million CPUs).
pub const MAX_CPU_MILLI: u64 = 1_000_000_000;
/// Largest memory amount of a node, a GPU or a member, in MiB (1 EiB).
pub const MAX_MEMORY_MIB: u64 = 1 << 40;
/// Longest time limit or progress timeout, in ms (about 100 years).
pub const MAX_DURATION_MS: u64 = 100 * 365 * 24 * 3600 * 1000;
/// Most allowed GPU types in one job.
pub const MAX_GPU_TYPES_PER_JOB: usize = 64;
/// Longest program path or working directory, in bytes (Linux's `PATH_MAX`).
pub const MAX_PATH_LEN: usize = 4096;
/// Longest single argument or environment value, in bytes (Linux's `MAX_ARG_STRLEN`).
pub const MAX_ARG_LEN: usize = 131_072;
/// Most arguments.
pub const MAX_ARGS: usize = 4096;
/// Most environment variables.
pub const MAX_ENV: usize = 4096;
/// Longest environment variable name, in bytes.
pub const MAX_ENV_NAME_LEN: usize = 255;
/// Largest total size of a command (program, arguments, environment), in bytes.
pub const MAX_COMMAND_BYTES: usize = 2 * 1024 * 1024;
