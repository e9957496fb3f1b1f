/* events/events_int.h — shared inside src/events/: event batches and one delivery round. */
#ifndef MC_EVENTS_EVENTS_INT_H
#define MC_EVENTS_EVENTS_INT_H
#include "events/events.h"

/* A batch of events read from the outbox; every string is malloc'd and owned by the batch. */
struct ev_batch {
	struct events_event *ev;
	size_t n, cap;
};
void ev_batch_clear(struct ev_batch *b);     /* frees the events' strings, keeps the array */
void ev_batch_release(struct ev_batch *b);   /* frees everything; b is reusable (empty) */

/* Read up to max events with seq > after (one read snapshot), replacing b's contents. */
int ev_load(struct store *s, int64_t after, size_t max, struct ev_batch *b);

/* One round: load up to max events after *ckpt, deliver them to c, advance the checkpoint (CAS from
 * *ckpt). *done = events delivered and checkpointed (0 = none pending, or the first one failed);
 * *ckpt follows. Returns MC_OK, the consumer's error (after checkpointing what succeeded),
 * MC_ECONFLICT when the stored checkpoint is no longer *ckpt (reload it), or a store error. */
int ev_round(struct store *s, const struct events_consumer *c, struct ev_batch *b, int64_t *ckpt, size_t max,
	     size_t *done);

#endif
