/* Must NOT compile: a pre-1.0 dlpack.h (no DLManagedTensorVersioned) included before zenith.h
 * holds the include guard, so zenith.h cannot declare its functions; it stops with a clear
 * #error instead of unknown-type errors. run.sh checks the failure and its message. */
#define DLPACK_DLPACK_H_
#define DLPACK_VERSION 80 /* what dlpack.h 0.8 defines instead of DLPACK_MAJOR_VERSION */

#include <zenith.h>

int main(void) { return 0; }
