/* Arduino compiles only the sketch folder's top level and src/: this unit
 * brings in the shared protocol from common/. */
#include "common/ek_crc32.c"
#include "common/ek_protocol.c"
