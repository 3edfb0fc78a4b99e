//! Loading the CUDA driver at run time, once per process.
//!
//! cudarc resolves every driver function lazily from `libcuda.so` and **panics** when the library
//! is absent, so nothing in this crate calls into cudarc before [`driver`] said the library is
//! there and `cuInit` succeeded. Without a driver every entry point returns
//! [`Error::NoDevice`] with a message naming the library names that were searched.

use std::sync::OnceLock;

use cudarc::driver::{result, sys};
use zenith_core::{Error, Result};

/// The result of loading the driver: `Ok` once `cuInit` succeeded, else the message of the
/// [`Error::NoDevice`] every caller gets.
static DRIVER: OnceLock<std::result::Result<(), String>> = OnceLock::new();

/// The file names cudarc tries, in its order (each once), when it opens the driver library.
pub fn driver_library_candidates() -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for name in ["cuda", "nvcuda"]
        .iter()
        .flat_map(|name| cudarc::get_lib_name_candidates(name))
    {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// Makes sure the CUDA driver is loaded and initialised; the first call does the work.
///
/// On failure: [`Error::NoDevice`] naming the library names searched (no `libcuda.so`), or the
/// driver's own error from `cuInit` (e.g. `CUDA_ERROR_NO_DEVICE`: a driver without a GPU, or
/// `CUDA_VISIBLE_DEVICES` hiding them all).
pub fn driver() -> Result<()> {
    DRIVER
        .get_or_init(load_driver)
        .clone()
        .map_err(Error::NoDevice)
}

fn load_driver() -> std::result::Result<(), String> {
    // SAFETY: `is_culib_present` only tries to dlopen the candidate names (running their
    // initialisers, as loading the driver must anyway) and closes what it opened.
    let present = unsafe { sys::is_culib_present() };
    if !present {
        return Err(format!(
            "the CUDA driver library was not found (searched the dynamic loader's path, \
             LD_LIBRARY_PATH included, for: {})",
            driver_library_candidates().join(", ")
        ));
    }
    // The library is present: cudarc's loader will not panic from here on.
    result::init().map_err(|e| format!("cuInit failed: {}", driver_error_text(e)))
}

/// A driver error as `CUDA_ERROR_NAME (description)`.
pub fn driver_error_text(error: result::DriverError) -> String {
    let name = error
        .error_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|_| format!("{:?}", error.0));
    match error.error_string() {
        Ok(text) => format!("{name} ({})", text.to_string_lossy()),
        Err(_) => name,
    }
}

/// Wraps a driver error met while doing `what` (after the driver loaded) as an error of the
/// core: a missing device is [`Error::NoDevice`], everything else [`Error::Internal`].
pub fn driver_failure(what: &str, error: result::DriverError) -> Error {
    let text = format!("{what}: {}", driver_error_text(error));
    match error.0 {
        sys::CUresult::CUDA_ERROR_NO_DEVICE | sys::CUresult::CUDA_ERROR_INVALID_DEVICE => {
            Error::NoDevice(text)
        }
        sys::CUresult::CUDA_ERROR_OUT_OF_MEMORY => Error::OutOfMemory {
            what: what.to_string(),
            needed: 0,
            limit: "what the device or the driver could give".into(),
        },
        _ => Error::Internal(text),
    }
}
