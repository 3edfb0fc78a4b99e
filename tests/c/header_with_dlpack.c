/* The header must coexist with the real dlpack.h, included before it (-DDLPACK_FIRST) or after
 * it: zenith.h's DLPack block sits under dlpack.h's own include guard, DLPACK_DLPACK_H_.
 * run.sh compiles this file both ways, as C11 and C++17, against the copy of dlpack.h that
 * pyarrow ships (arrow/c/dlpack_abi.h: upstream's header, same guard, a newer minor version). */
#include <stdint.h>

#ifdef DLPACK_FIRST
#include <arrow/c/dlpack_abi.h>
#include <zenith.h>
#else
#include <zenith.h>
#include <arrow/c/dlpack_abi.h>
#endif

int main(void) {
    /* zenith's declarations use whichever definition came first. */
    zenith_status (*export_column)(const zenith_batch *, const char *, DLManagedTensorVersioned **,
                                   zenith_error **) = zenith_batch_column_dlpack;
    DLManagedTensorVersioned tensor;
    tensor.version.major = DLPACK_MAJOR_VERSION;
    tensor.flags = DLPACK_FLAG_BITMASK_READ_ONLY | DLPACK_FLAG_BITMASK_IS_COPIED;
    tensor.dl_tensor.device.device_type = kDLCPU;
    tensor.dl_tensor.dtype.code = (uint8_t)kDLBool;
    (void)export_column;
#ifdef DLPACK_FIRST
    {
        /* The real header came first: what it has beyond zenith.h's block is usable. */
        DLPackExchangeAPI *api = NULL;
        (void)api;
    }
#endif
    return tensor.flags == 3 && tensor.version.major == 1 ? 0 : 1;
}
