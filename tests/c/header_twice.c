/* The header must survive double inclusion and compile alone, as C11 and as C++17 (run.sh builds
 * this file both ways with -Wall -Wextra -Wpedantic -Werror). */
#include <zenith.h>
#include <zenith.h>

int main(void) {
    zenith_status status = ZENITH_OK;
    struct ArrowArray array;
    struct ArrowSchema schema;
    struct ArrowArrayStream stream;
    DLManagedTensorVersioned tensor;
    tensor.flags = DLPACK_FLAG_BITMASK_READ_ONLY;
    (void)array;
    (void)schema;
    (void)stream;
    (void)tensor;
    return status;
}
