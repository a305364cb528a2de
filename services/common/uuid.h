/* uuid.h - the shape of a UUID as ids travel in paths and tokens, and new ones. */
#ifndef OMS_UUID_H
#define OMS_UUID_H

#include <stdbool.h>

#define UUID_TEXT_LEN 36

/* True when `text` is a UUID in its canonical 8-4-4-4-12 form of hex
 * digits (either case), nothing before or after. */
bool uuid_is_valid(const char *text);

/* Writes a random (version 4) UUID, lower-case, NUL-terminated, into
 * `out`: an id the service chooses before anything is written, so that a
 * retry of the write can name the same thing. Not for secrets. */
void uuid_generate_v4(char out[UUID_TEXT_LEN + 1]);

#endif
