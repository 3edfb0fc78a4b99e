//! The ring C API: would-block outcomes, batched pushes and pops, and bad arguments.

#[test]
fn the_c_api_reports_would_block_and_moves_bytes_in_order() {
    use std::ffi::c_void;
    use std::ptr;
    use zenith::error::{zenith_error_code, zenith_error_free};
    use zenith::ring::*;
    use zenith::status::*;

    for kind in [ZENITH_RING_SPSC, ZENITH_RING_MPMC] {
        let mut ring = ptr::null_mut();
        let mut err = ptr::null_mut();
        // SAFETY: (whole block) every pointer passed is live and sized as documented.
        unsafe {
            assert_eq!(zenith_ring_new(3, 2, kind, &mut ring, &mut err), ZENITH_OK);
            assert_eq!(zenith_ring_capacity(ring), 4);
            let mut out = [0u8; 2];
            let out_ptr = out.as_mut_ptr().cast::<c_void>();
            assert_eq!(zenith_ring_pop(ring, out_ptr, &mut err), ZENITH_WOULD_BLOCK);
            assert!(err.is_null(), "would-block is not an error");
            let data: Vec<u8> = (0..10).collect();
            let mut pushed = 0;
            let status =
                zenith_ring_push_many(ring, data.as_ptr().cast(), 5, &mut pushed, &mut err);
            assert_eq!((status, pushed), (ZENITH_OK, 4));
            let status = zenith_ring_push(ring, data[8..].as_ptr().cast(), &mut err);
            assert_eq!(status, ZENITH_WOULD_BLOCK);
            assert_eq!(zenith_ring_len(ring), 4);
            assert_eq!(zenith_ring_pop(ring, out_ptr, &mut err), ZENITH_OK);
            assert_eq!(out, [0, 1]);
            let mut all = [0u8; 8];
            let mut popped = 0;
            let status =
                zenith_ring_pop_many(ring, all.as_mut_ptr().cast(), 4, &mut popped, &mut err);
            assert_eq!((status, popped), (ZENITH_OK, 3));
            assert_eq!(all[..6], [2, 3, 4, 5, 6, 7]);
            let status =
                zenith_ring_pop_many(ring, all.as_mut_ptr().cast(), 4, &mut popped, &mut err);
            assert_eq!((status, popped), (ZENITH_WOULD_BLOCK, 0));
            zenith_ring_free(ring);

            let status = zenith_ring_new(4, 2, 9, &mut ring, &mut err);
            assert_eq!(status, ZENITH_ERR_INVALID_ARGUMENT);
            assert_eq!(zenith_error_code(err), ZENITH_ERR_INVALID_ARGUMENT);
            zenith_error_free(err);
        }
    }
}
