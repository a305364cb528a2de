/* faults_admin.h - GET and PUT /admin/faults (admin credential required).
 *
 * GET returns the flags set in oms:faults; PUT merges a JSON object into
 * them (0, false or null clears a fault) and returns the result. The
 * answering worker applies the new snapshot at once; the others within a
 * refresh interval (faults_refresh.h).
 */
#ifndef OMS_FAULTS_ADMIN_H
#define OMS_FAULTS_ADMIN_H

struct http_request;

void faults_admin_handle_get(struct http_request *r);
void faults_admin_handle_put(struct http_request *r);

#endif
