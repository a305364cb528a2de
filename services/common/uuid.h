/* uuid.h - the shape of a UUID as ids travel in paths and tokens. */
#ifndef OMS_UUID_H
#define OMS_UUID_H

#include <stdbool.h>

#define UUID_TEXT_LEN 36

/* True when `text` is a UUID in its canonical 8-4-4-4-12 form of hex
 * digits (either case), nothing before or after. */
bool uuid_is_valid(const char *text);

#endif
