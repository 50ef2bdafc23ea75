/* A persistent thread pool for ferry's compiled kernels.
 *
 * Workers are started on first use and kept. After a task they spin for about a
 * millisecond (a session's next convolution usually comes sooner), then sleep on a
 * condition variable; waking a sleeping thread costs tens of microseconds on a virtual
 * machine, creating one about twice that. Items are handed out through an atomic counter:
 * a thread that shares its core with another process simply takes fewer items. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "native.h"

typedef struct {
    float *buffer[4];
    size_t floats[4];
} Scratch;

static pthread_mutex_t call_lock = PTHREAD_MUTEX_INITIALIZER; /* one parallel call at a time */
static pthread_mutex_t sleep_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static int workers;                 /* started worker threads (slots 1..workers) */
static atomic_uint generation;      /* the newest task */
static atomic_uint closed;          /* the newest task whose items are all done */
static atomic_int next_item, active; /* next item to take; workers inside a task */
static pool_task current_task;
static void *current_ctx;
static int current_items, current_threads;
static Scratch scratch[POOL_MAX_THREADS];
static unsigned first_seen[POOL_MAX_THREADS]; /* generation before a worker's first task */

static const double spin_seconds = 5e-3; /* how long an idle worker spins before sleeping */

static double seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static inline void relax(void)
{
#ifdef FERRY_X86
    _mm_pause();
#endif
}

static void take_items(int slot)
{
    for (int item; (item = atomic_fetch_add(&next_item, 1)) < current_items;)
        current_task(current_ctx, item, slot);
}

static void *worker_main(void *arg)
{
    const int slot = (int)(size_t)arg;
    unsigned seen = first_seen[slot]; /* not a fresh read: the first task may be out already */
    for (;;) {
        double start = seconds();
        unsigned now;
        int spins = 0;
        while ((now = atomic_load(&generation)) == seen) {
            relax();
            if (++spins % 256 == 0 && seconds() - start > spin_seconds) {
                pthread_mutex_lock(&sleep_lock);
                while ((now = atomic_load(&generation)) == seen)
                    pthread_cond_wait(&wake, &sleep_lock);
                pthread_mutex_unlock(&sleep_lock);
                break;
            }
        }
        seen = now;
        /* Join task `now` unless the caller has closed it already: a worker that wakes late
         * must not touch a finished task (its context is gone). The caller closes, then
         * waits for `active` to drop; joining increments `active`, then checks `closed`:
         * with sequentially consistent atomics one of the two sees the other. */
        atomic_fetch_add(&active, 1);
        if ((int)(atomic_load(&closed) - now) < 0 && slot < current_threads)
            take_items(slot);
        atomic_fetch_sub(&active, 1);
    }
    return NULL;
}

static void after_fork_in_child(void)
{
    workers = 0; /* the child has none of the parent's threads */
    atomic_store(&active, 0);
    pthread_mutex_init(&call_lock, NULL);
    pthread_mutex_init(&sleep_lock, NULL);
    pthread_cond_init(&wake, NULL);
}

static void start_workers(int wanted)
{
    static int fork_handler;
    if (!fork_handler)
        fork_handler = pthread_atfork(NULL, NULL, after_fork_in_child) == 0;
    if (wanted > POOL_MAX_THREADS - 1)
        wanted = POOL_MAX_THREADS - 1;
    while (workers < wanted) {
        pthread_t thread;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        first_seen[workers + 1] = atomic_load(&generation);
        int failed = pthread_create(&thread, &attr, worker_main, (void *)(size_t)(workers + 1));
        pthread_attr_destroy(&attr);
        if (failed)
            break;
        ++workers;
    }
}

void pool_run(pool_task task, void *ctx, int items, int threads)
{
    if (items <= 0)
        return;
    if (threads > items)
        threads = items;
    if (threads <= 1) { /* no hand-off: run here */
        for (int item = 0; item < items; ++item)
            task(ctx, item, 0);
        return;
    }
    start_workers(threads - 1);
    if (threads > workers + 1)
        threads = workers + 1;
    current_task = task;
    current_ctx = ctx;
    current_items = items;
    current_threads = threads;
    atomic_store(&next_item, 0);
    pthread_mutex_lock(&sleep_lock);
    const unsigned number = atomic_fetch_add(&generation, 1) + 1;
    pthread_cond_broadcast(&wake);
    pthread_mutex_unlock(&sleep_lock);
    take_items(0);
    /* every item is taken; wait only for workers still inside this task, not for
     * sleeping ones to wake (that costs tens of microseconds, more on a virtual machine) */
    atomic_store(&closed, number);
    while (atomic_load(&active) > 0)
        relax();
}

void pool_enter(void) { pthread_mutex_lock(&call_lock); }

void pool_leave(void) { pthread_mutex_unlock(&call_lock); }

float *pool_scratch(int slot, int which, size_t floats)
{
    Scratch *s = &scratch[slot];
    if (s->floats[which] >= floats)
        return s->buffer[which];
    free(s->buffer[which]);
    s->buffer[which] = NULL;
    s->floats[which] = 0;
    void *p = NULL;
    if (posix_memalign(&p, 64, floats * sizeof(float) + 64) != 0)
        return NULL;
    memset(p, 0, floats * sizeof(float) + 64);
    s->buffer[which] = p;
    s->floats[which] = floats;
    return p;
}

int cpu_supported(void)
{
#ifdef FERRY_X86
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}
