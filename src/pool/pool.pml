/*
 * Promela model of the pool's acquire / release / wait / close protocol
 * (issue 10; the design in pool.c: barging with a starvation threshold,
 * per-waiter condvars, nsignalled, dispatch() to the oldest unsignalled
 * waiter, direct hand-off to a starving head, wake on miss). Checked with spin by
 * tests/model/check-pool-model, which `make check` runs.
 *
 * What is modelled
 * - One mutex: every critical section is one `atomic` block; the states
 *   between them are exactly the states in which nobody holds the lock.
 * - Connections as counters, one per list: opening, idle, inuse (borrowed
 *   or being validated for its acquirer), checking (a validation cut short
 *   by its caller's deadline, finished by the maintenance thread), closingc
 *   (closed, its server process not gone yet: the slot stays taken until a
 *   reaper process sees it exit; issue 22).
 * - The breaker's effect on slots (issue 22): a free slot is not available
 *   while the breaker is open and connections can come back (in use, being
 *   checked or opened); with none, queued waiters are woken and fail fast.
 * - The waiter queue: q[0..qlen-1] in ticket (arrival) order, per waiter
 *   the flags signalled / handed / fail (pool closing); nsig = nsignalled.
 *   Re-queueing after a failed connect keeps the acquire's ticket.
 * - A condvar wait: the waiter blocks until one of its flags is set or one
 *   of its timers fires, then re-takes the lock and runs its wake-up check
 *   in one step. A signal is consumed whenever the waiter is next
 *   scheduled, so anything may happen in between (bargers included).
 * - dispatch() as in the design: available = idle + free slots (none while
 *   the breaker is open); while nsig < available, signal the oldest queued
 *   unsignalled waiter that can use what is available (see ELIGIBLE).
 * - Give-back: a release of a connection that came by a hand-off, with
 *   waiters and no starving head, may hand it to any queued waiter (the
 *   code gives it to the one it was taken from, matched by address).
 * - Wake on miss: a release with waiters (and no starving head) may defer
 *   the wake-up instead of dispatching (the code does so when its thread
 *   came back quickly twice: here any such release may), unless the
 *   maintenance thread is busy outside the lock. `deferred` idle
 *   connections count as taken for dispatch; taking an idle connection
 *   clamps deferred to what is left; the releasing caller's next acquire
 *   ends one deferral; the tick (armed by a deferral, kept armed while
 *   deferrals go on) ends them all and dispatches; maintenance going busy
 *   (the top-up connect; a check) ends them first. Thread affinity (which
 *   idle connection is taken) is invisible here: connections are counters.
 * - Callers: NC processes, each CYC acquire/release cycles; every acquire
 *   picks "has a deadline" or "waits forever"; every release is clean or
 *   broken. A close process fires at any point; a maintenance process
 *   finishes cut-short checks (checking -> idle or closed) and, with MIN,
 *   opens connections.
 * - Close ordering with `checking` (issue 22, item 6): once close has
 *   started, the maintenance thread makes a last pass (checks not finished
 *   are closed) and ends; close joins it (mjoined), then waits for the
 *   callers inside acquire and the connects in progress, not for
 *   `checking`. A validation its caller's deadline cuts short may end at
 *   any point of that (the check runs outside the lock): if close has
 *   started, the caller closes the connection itself.
 *
 * What is abstracted
 * - Time: no clock. A caller's deadline passing, a waiter's retry_at
 *   passing, a waiter becoming starving (waited T) and the breaker's open
 *   period ending are nondeterministic events that may happen at any time.
 *   Starvation is given to the oldest non-starving queued waiter first.
 *   T = 0 (strict FIFO hand-off) is the build with -DFAIR_T0.
 * - I/O: connect, validation and the maintenance thread's checks succeed
 *   or fail nondeterministically. Failures (connect failed, validation
 *   failed) are drawn from a budget of NFAULT per run, so retry loops are
 *   finite; SPUR spurious wake-ups per run likewise.
 * - The breaker: open or closed; a failed connect may open it, the end of
 *   its open period (a timer, which must dispatch()) closes it. The
 *   half-open single probe is not modelled separately.
 * - Validation of idle connections: each one taken from idle may be stale
 *   (validated outside the lock) or not. The idle sweep (idle sockets
 *   found readable move to `checking` and back, all within one pass of the
 *   maintenance thread) is not modelled. Queries, cancels, reset, events,
 *   statistics and the drain deadline's cancelling are not modelled; close
 *   gives up its drain at any moment (the drain deadline).
 * - Bounded: MAX connections, NC callers, CYC cycles each.
 * - A critical section is one step: the code must not drop the lock inside
 *   one. Where it does (to emit an event), the model is silent; that is how
 *   a timed-out caller reporting its timeout while still queued could be
 *   handed a connection it never used (fixed; it_pool_contention
 *   no_handoff_to_leaving_caller).
 *
 * Properties (assertions: pan -DSAFETY run; livelock: pan -DNP -l -f)
 * - total <= MAX in every state, and so are the server processes (total +
 *   zombie: processes whose slot went before they exited).
 * - A queued waiter fails on the open breaker only when no connection can
 *   come back.
 * - nsig equals the number of queued waiters with signalled set.
 * - No lost wake-up: in every state where nobody holds the lock, if some
 *   queued waiter could use an available resource (an idle connection it
 *   may take that no deferral covers, or a free slot with the breaker
 *   closed and its retry_at passed) then some queued waiter is signalled
 *   or failed (woken).
 * - A deferred wake-up is bounded: deferred <= idle, and deferred > 0 only
 *   while the tick is armed and maintenance is not busy (so the tick, a
 *   timer, can fire: AGEC__DEFER_TICK_US in the code).
 * - Every acquire returns (served, timed out or closed): no invalid end
 *   state, and no non-progress cycle under weak fairness (pan -l -f;
 *   there are no progress labels: the model terminates, so any cycle is a
 *   livelock, e.g. a waiter re-signalling itself).
 * - Close terminates; once it returned: nobody inside acquire, opening,
 *   idle and checking empty, queue empty. Once the maintenance thread is
 *   joined, `checking` stays empty (nobody would finish or close a check).
 *
 * Variants (-D...). tests/model/check-pool-model (CTest model_pool, in
 * make check; about 90 s of CPU) verifies the protocol with NC=2 CYC=2 (also MIN=1,
 * FAIR_T0, NOCLOSE, MAX=1 NOCLOSE) and NC=3 CYC=1, liveness with and
 * without close, and runs
 * each seeded bug below expecting spin to FIND it:
 * - BUG_SIGNAL_HEAD_TWICE: dispatch signals the head once per available
 *   resource (the old bug: both signals reach the same waiter; item 2 of
 *   issue 10): a lost wake-up.
 * - BRIEF_HANDOFF: no dispatch() after a direct hand-off: a lost wake-up.
 * - BRIEF_GIVEBACK: no dispatch() after a give-back: a lost wake-up.
 * - BRIEF_ENQUEUE: a caller that queues does not dispatch(): a lost wake-up.
 * - BRIEF_DISPATCH: dispatch signals the oldest unsignalled waiter even if
 *   it cannot use what is available (in backoff, or not the head while the
 *   head starves): that waiter re-signals itself for ever, a livelock. It
 *   shows only with NOCLOSE (no closer process): under weak fairness the
 *   closer always runs eventually and fails every waiter, which ends any
 *   cycle; a real program may never close.
 * - BRIEF_TICK: the tick does not end deferrals: with max 1 and no close,
 *   a waiter without a deadline sleeps for ever beside an idle connection
 *   whose thread never came back (invalid end state).
 * - BRIEF_SUSPEND: maintenance goes busy (a top-up connect, min 2) with a
 *   deferral pending, which its tick cannot end meanwhile.
 * - BUG_EARLY_FREE: a closed connection's slot is freed at once while its
 *   server process may still run (issue 22, defect 2): more than max.
 * - BUG_BREAKER_SLOTS: free slots count while the breaker is open, and a
 *   woken waiter denied by it fails (issue 22, defect 5).
 * - BUG_CHECK_AFTER_CLOSE: a check cut short by its caller's deadline goes
 *   to `checking` even once close has started: when that happens after the
 *   maintenance thread's last pass, the connection is left there, its
 *   PGconn, socket and server process leaked (issue 22, defect 6).
 * - NOCLOSE: no closer process (the pool is never closed).
 * Bigger bounds also verify; they are not part of make check: NC=3 CYC=2
 * (22 M states, 70 s, 2.5 GB before give-back), and NC=4 CYC=1 NOCLOSE
 * (132 M states, 10 min, 17 GB), the smallest configuration in which a
 * give-back can take a wake-up from a third waiter (BRIEF_GIVEBACK runs
 * there and is found after 2.5 M states).
 */

#ifndef MAX
#define MAX 2
#endif
#ifndef NC
#define NC 3
#endif
#ifndef CYC
#define CYC 2
#endif
#ifndef NFAULT
#define NFAULT 2
#endif
#ifndef SPUR
#define SPUR 1
#endif
#ifndef MIN
#define MIN 0
#endif

/* does this acquire have a deadline? (else it waits until served) */
#ifndef HASDL
#define HASDL() if :: _pid == 0 -> hasdl = 0 :: _pid == 1 -> hasdl = 1 :: _pid > 1 -> if :: hasdl = 0 :: hasdl = 1 fi fi
#endif

/* what a caller does next, outside the lock */
mtype = { A_SLEEP, A_CONNECT, A_VALIDATE, A_RETRY, A_GOT, A_DONE };

byte opening, idle, inuse, checking;
/* closingc: closed connections whose server process has not exited yet:
 * their slots stay taken (issue 22). zombie: server processes whose slot
 * was freed before they exited (only the seeded bug BUG_EARLY_FREE makes
 * any): pg_stat_activity would show total + zombie backends. */
byte closingc, zombie;
#define total (opening + idle + inuse + checking + closingc)
/* connections that may still come back to the pool */
#define BACK (inuse + checking + opening)
bit brk;     /* breaker open: no connect may start */
bit closing; /* close started */
bit mjoined; /* the maintenance thread has made its last pass and is joined */
bit closed;  /* close returned */
byte inacq;  /* callers inside acquire */
byte faults = NFAULT;
byte spur = SPUR;
byte mopen = MIN; /* connections the maintenance thread may still open */

/* wake on miss: idle connections whose wake-up a release deferred (its
 * thread expected back), the maintenance tick (armed, a deferral since the
 * last tick), maintenance working outside the lock, and per caller "my last
 * release deferred" */
byte deferred;
bit armed, dsince, mbusy;
bit mydef[NC];

byte q[NC];
byte qlen;
byte nsig;
bit queued[NC], sig[NC], hand[NC], fail[NC], starv[NC], dl[NC], retry[NC];
/* the caller's connection came by a hand-off (it was taken from another
 * thread, which a release outside a starving phase may give it back to) */
bit lent[NC];
/* arrival order of the callers inside acquire: before[i].b[j] = i's
 * acquire started before j's (canonical, unlike ever-growing tickets) */
typedef row { bit b[NC] };
row before[NC];
bit inside[NC];

#ifdef FAIR_T0
#define STARVING(w) 1
#else
#define STARVING(w) starv[w]
#endif

/* A free slot the open breaker keeps shut is nothing to wake a waiter for
 * while connections may come back (issue 22, item 5); with nothing to come
 * back, waiters are woken to fail fast. */
#ifdef BUG_BREAKER_SLOTS
#define FREE_SLOTS (MAX - total)
#else
#define FREE_SLOTS ((brk && BACK > 0) -> 0 : MAX - total)
#endif
/* idle connections nobody's deferral covers: the ones dispatch wakes for */
#define AWAKE (idle - deferred)
#define AVAIL (AWAKE + FREE_SLOTS)
/* may queued waiter w take an idle connection now (any idle one, once it
 * looks: TAKE_IDLE; one not covered by a deferral, for waking it:
 * CAN_IDLE) / connect now? */
#define TAKE_IDLE(w) (idle > 0 && (q[0] == w || !STARVING(q[0])))
#define CAN_IDLE(w) (AWAKE > 0 && (q[0] == w || !STARVING(q[0])))
#define CAN_SLOT(w) (total < MAX && !brk && !retry[w])
/* a queued waiter fails fast on the open breaker only when nothing can come back */
#define CAN_FAILFAST(w) (brk && total < MAX && BACK == 0 && idle == 0)
#define CAN_USE(w) (queued[w] && (CAN_IDLE(w) || CAN_SLOT(w) || CAN_FAILFAST(w)))
#ifdef BRIEF_DISPATCH
#define ELIGIBLE(w) 1
#else
#define ELIGIBLE(w) (CAN_IDLE(w) || CAN_SLOT(w) || CAN_FAILFAST(w))
#endif


#define SIGNALLED(w) (queued[w] && sig[w])
#define WOKEN(w) (queued[w] && (sig[w] || fail[w]))
#if NC == 2
#define ANY_USE (CAN_USE(0) || CAN_USE(1))
#define ANY_WOKEN (WOKEN(0) || WOKEN(1))
#define NSIG_COUNT (SIGNALLED(0) + SIGNALLED(1))
#define SIG_QUEUED ((!sig[0] || queued[0]) && (!sig[1] || queued[1]))
#elif NC == 3
#define ANY_USE (CAN_USE(0) || CAN_USE(1) || CAN_USE(2))
#define ANY_WOKEN (WOKEN(0) || WOKEN(1) || WOKEN(2))
#define NSIG_COUNT (SIGNALLED(0) + SIGNALLED(1) + SIGNALLED(2))
#define SIG_QUEUED ((!sig[0] || queued[0]) && (!sig[1] || queued[1]) && (!sig[2] || queued[2]))
#elif NC == 4
#define ANY_USE (CAN_USE(0) || CAN_USE(1) || CAN_USE(2) || CAN_USE(3))
#define ANY_WOKEN (WOKEN(0) || WOKEN(1) || WOKEN(2) || WOKEN(3))
#define NSIG_COUNT (SIGNALLED(0) + SIGNALLED(1) + SIGNALLED(2) + SIGNALLED(3))
#define SIG_QUEUED \
    ((!sig[0] || queued[0]) && (!sig[1] || queued[1]) && (!sig[2] || queued[2]) && (!sig[3] || queued[3]))
#else
#error "NC must be 2, 3 or 4"
#endif


/* ---- invariants, checked at the end of every critical section, so in
 * every state where nobody holds the lock (see the bottom of the file) ---- */
inline check()
{
    assert(total <= MAX);
    assert(total + zombie <= MAX); /* server processes, not just slots */
#ifndef BUG_SIGNAL_HEAD_TWICE
    /* (the bug variant breaks this count at once; left out there so the
     * check shows the symptom, the lost wake-up) */
    assert(nsig == NSIG_COUNT && SIG_QUEUED);
#endif
    assert(!ANY_USE || ANY_WOKEN); /* no lost wake-up */
    /* a deferral never covers more than is idle, and exists only while its
     * tick can fire (armed, maintenance not away from its timer): the
     * bound on a deferred wake-up */
    assert(deferred <= idle);
#ifndef BRIEF_TICK
    /* (left out in that bug variant, so the check shows the symptom: a
     * waiter that sleeps for ever beside an idle connection) */
    assert(deferred == 0 || (armed && !mbusy));
#endif
    assert(!closed || (inacq == 0 && opening == 0 && idle == 0 && checking == 0 && qlen == 0));
    /* a check in `checking` only while the maintenance thread can finish it
     * (issue 22, item 6: after its last pass nobody closes it) */
    assert(!mjoined || checking == 0)
}

/* ---- the pool's helpers, called with the lock held (inside atomic) ---- */

inline dispatch()
{
#ifdef BUG_SIGNAL_HEAD_TWICE
    do
    :: qlen > 0 && nsig < AVAIL -> sig[q[0]] = 1; nsig++
    :: else -> break
    od;
#else
    k = 0;
    do
    :: k < qlen && nsig < AVAIL ->
        if
        :: !sig[q[k]] && ELIGIBLE(q[k]) -> sig[q[k]] = 1; nsig++
        :: else
        fi;
        k++
    :: else -> break
    od;
    k = 0
#endif
}

/* an idle connection was taken: a deferral covers at most what is left */
inline took_idle()
{
    if
    :: deferred > idle -> deferred = idle
    :: else
    fi
}

/* end every deferral now (the tick, or maintenance going busy) */
inline defer_end()
{
#ifdef BRIEF_TICK
    skip
#else
    if
    :: deferred > 0 -> deferred = 0; dispatch()
    :: else
    fi
#endif
}

/* a connection is closed (broken, failed check): its slot stays taken until
 * its server process has exited (the reaper) */
inline close_slot()
{
#ifdef BUG_EARLY_FREE
    zombie++; /* the old code: slot freed while the process still runs */
    dispatch()
#else
    closingc++;
    dispatch() /* nothing may come back now: waiters fail fast on an open breaker */
#endif
}

/* remove w from the queue; a signal it had not consumed goes with it */
inline dequeue(w)
{
    k = 0;
    do
    :: q[k] == w -> break
    :: else -> k++
    od;
    assert(k < qlen);
    do
    :: k + 1 < qlen -> q[k] = q[k + 1]; k++
    :: else -> break
    od;
    qlen--;
    q[qlen] = 0;
    queued[w] = 0;
    if
    :: sig[w] -> sig[w] = 0; nsig--
    :: else
    fi;
    k = 0
}

/* insert me by ticket: behind every waiter that arrived before me */
inline enqueue(me)
{
    k = qlen;
    do
    :: k > 0 && before[me].b[q[k - 1]] -> q[k] = q[k - 1]; k--
    :: else -> break
    od;
    q[k] = me;
    qlen++;
    queued[me] = 1;
    k = 0
}

/* acquire returns (lock held) */
inline leave()
{
    inacq--;
    inside[_pid] = 0;
    k = 0;
    do
    :: k < NC -> before[_pid].b[k] = 0; before[k].b[_pid] = 0; k++
    :: else -> break
    od;
    k = 0
}

/* acquire steps 1-3 (lock held) */
inline step1()
{
    if
    :: closing -> leave(); act = A_DONE
    :: else ->
        if
        :: idle > 0 && (qlen == 0 || !STARVING(q[0])) ->
            idle--; took_idle(); inuse++; dispatch(); act = A_VALIDATE
        :: else ->
            if
            :: qlen == 0 && total < MAX && !brk ->
                opening++; act = A_CONNECT
            :: else ->
                enqueue(_pid); act = A_SLEEP;
#ifndef BRIEF_ENQUEUE
                dispatch()
#endif
            fi
        fi
    fi
}

/* acquire step 4: the wake-up check (lock held) */
inline wake()
{
    if
    :: sig[_pid] -> sig[_pid] = 0; nsig--
    :: else
    fi;
    if
    :: hand[_pid] -> hand[_pid] = 0; lent[_pid] = 1; dispatch(); leave(); act = A_GOT
    :: else ->
        if
        :: fail[_pid] -> fail[_pid] = 0; dequeue(_pid); dispatch(); leave(); act = A_DONE
        :: else ->
            if
            :: TAKE_IDLE(_pid) -> dequeue(_pid); idle--; took_idle(); inuse++; dispatch(); act = A_VALIDATE
            :: else ->
                if
                :: CAN_SLOT(_pid) -> dequeue(_pid); opening++; dispatch(); act = A_CONNECT
#ifdef BUG_BREAKER_SLOTS
                :: brk && total < MAX ->
#else
                :: CAN_FAILFAST(_pid) ->
#endif
                    /* the breaker denies a connect: AGEC_ERR_BREAKER_OPEN,
                     * only when no connection can come back */
                    assert(BACK == 0);
                    dequeue(_pid); dispatch(); leave(); act = A_DONE
                :: else ->
                    if
                    :: dl[_pid] -> dequeue(_pid); dispatch(); leave(); act = A_DONE
                    :: else -> dispatch(); act = A_SLEEP
                    fi
                fi
            fi
        fi
    fi
}

active [NC] proctype caller()
{
    byte k, w;
    byte cyc;
    bit hasdl;
    mtype act;

    do
    :: cyc < CYC ->
        cyc++;
        atomic {
            if
            :: closed -> break /* a program does not acquire from a closed pool */
            :: else
            fi;
            if
            :: closing -> act = A_DONE
            :: else ->
                inacq++;
                k = 0;
                do
                :: k < NC -> before[_pid].b[k] = 0; before[k].b[_pid] = (k != _pid && inside[k]); k++
                :: else -> break
                od;
                k = 0;
                inside[_pid] = 1;
                starv[_pid] = 0; dl[_pid] = 0; retry[_pid] = 0;
                HASDL();
                /* back from a release that deferred: that deferral ends
                 * (we take the connection, or dispatch passes it on) */
                if
                :: mydef[_pid] ->
                    mydef[_pid] = 0;
                    if
                    :: deferred > 0 -> deferred--
                    :: else
                    fi
                :: else
                fi;
                step1()
            fi;
            check()
        };
        do
        :: act == A_SLEEP ->
            /* wait on the own condvar until signalled / handed / failed, or
             * a timer (deadline, retry_at, spurious); then the lock */
            atomic {
                (sig[_pid] || hand[_pid] || fail[_pid] || (hasdl && !dl[_pid]) || retry[_pid] || spur > 0) ->
                if
                :: sig[_pid] || hand[_pid] || fail[_pid] -> skip
                :: hasdl && !dl[_pid] -> dl[_pid] = 1
                :: retry[_pid] -> retry[_pid] = 0
                :: spur > 0 -> spur--
                fi;
                wake();
                check()
            }
        :: act == A_CONNECT ->
            /* connect outside the lock, bounded by min(D, connect_timeout) */
            atomic {
                opening--;
                assert(!closed);
                if
                :: !closing -> inuse++; leave(); act = A_GOT
                :: faults > 0 || closing ->
                    if
                    :: faults > 0 && !closing -> faults--
                    :: else
                    fi;
                    if
                    :: brk = 1 /* the breaker may open */
                    :: skip
                    fi;
                    dispatch();
                    if
                    :: closing -> leave(); act = A_DONE
                    :: hasdl -> dl[_pid] = 1; leave(); act = A_DONE
                    :: !closing ->
                        /* backoff and retry until D, queued by ticket */
                        retry[_pid] = 1;
                        enqueue(_pid);
                        act = A_SLEEP;
#ifndef BRIEF_ENQUEUE
                        dispatch()
#endif
                    fi
                fi;
                check()
            }
        :: act == A_VALIDATE ->
            /* a connection taken from idle, validated outside the lock if
             * it sat idle too long */
            if
            :: atomic { leave(); act = A_GOT; check() } /* fresh, or validation passed */
            :: atomic {
                   faults > 0 -> faults--;
                   inuse--; /* failed: closed */
                   close_slot();
                   dispatch();
                   act = A_RETRY;
                   check()
               }
            :: atomic {
                   hasdl -> dl[_pid] = 1;
                   /* the caller's deadline cut the check short: the
                    * maintenance thread finishes it, unless close has
                    * started (its last pass may be over): then the caller
                    * closes the connection itself */
                   inuse--;
#ifdef BUG_CHECK_AFTER_CLOSE
                   checking++;
#else
                   if
                   :: closing -> close_slot()
                   :: else -> checking++
                   fi;
#endif
                   leave(); act = A_DONE;
                   check()
               }
            fi
        :: act == A_RETRY -> atomic { step1(); check() }
        :: act == A_GOT ->
            /* use it, then release it */
            atomic {
                if
                :: closing -> inuse--; dispatch() /* released after close: closed */
                :: !closing -> inuse--; close_slot() /* release broken */
                :: !closing && qlen > 0 && STARVING(q[0]) ->
                    /* direct hand-off to the starving head */
                    w = q[0];
                    dequeue(w);
                    hand[w] = 1;
#ifndef BRIEF_HANDOFF
                    dispatch();
#endif
                    w = 0
                :: !closing && lent[_pid] && qlen > 0 && !STARVING(q[0]) ->
                    /* give-back: to the thread the connection was taken
                     * from, if it waits (the code matches it by its last
                     * connection; here any queued waiter may be it) */
                    k = 0;
                    do
                    :: k + 1 < qlen -> k++
                    :: break
                    od;
                    w = q[k];
                    k = 0;
                    dequeue(w);
                    hand[w] = 1;
#ifndef BRIEF_GIVEBACK
                    dispatch();
#endif
                    w = 0
                :: !closing && !(qlen > 0 && STARVING(q[0])) ->
                    inuse--; idle++;
                    if
                    :: qlen > 0 && !mbusy ->
                        /* this thread is expected back: defer the wake-up */
                        deferred++; mydef[_pid] = 1; dsince = 1; armed = 1
                    :: mydef[_pid] = 0; dispatch()
                    fi
                fi;
                lent[_pid] = 0;
                act = A_DONE;
                check()
            }
        :: act == A_DONE -> break
        od;
        act = 0;
        hasdl = 0
    :: else -> break
    od
}

active proctype maint()
{
    byte k;
end:
    do
    :: atomic {
           /* finish a check the acquirer's deadline cut short */
           checking > 0 -> defer_end(); checking--;
           assert(!closed);
           if
           :: !closing -> idle++
           :: skip /* the check failed, or close: closed */
           fi;
           dispatch();
           check()
       }
    :: atomic {
           /* keep MIN connections */
           mopen > 0 && total < MIN && !closing && !brk -> mopen--; opening++;
           /* the connect runs outside the lock: no tick meanwhile */
           mbusy = 1;
#ifndef BRIEF_SUSPEND
           defer_end();
#endif
           check()
       };
       atomic {
           opening--;
           assert(!closed);
           if
           :: !closing -> idle++
           :: faults > 0 -> faults--
           :: closing
           fi;
           dispatch();
           mbusy = 0;
           check()
       }
    :: atomic {
           /* the deferral tick (AGEC__DEFER_TICK_US after the first
            * deferral; again while deferrals go on) */
           armed && !mbusy ->
           defer_end();
           if
           :: dsince -> dsince = 0
           :: else -> armed = 0
           fi;
           check()
       }
    :: atomic {
           /* the breaker's open period ends (a timer that dispatches) */
           brk && !closing -> brk = 0; dispatch(); check()
       }
    :: atomic {
           /* close started: the last pass (checks not finished are
            * closed), then the thread ends and close joins it */
           closing ->
           do
           :: checking > 0 -> checking--; close_slot()
           :: else -> break
           od;
           mjoined = 1;
           check();
           break
       }
    :: atomic {
           /* the oldest queued waiter not yet starving has now waited T */
           qlen > 0 && !starv[q[qlen - 1]] ->
           k = 0;
           do
           :: starv[q[k]] -> k++
           :: else -> break
           od;
           starv[q[k]] = 1;
           k = 0;
           check()
       }
    od
}

/* Server processes of closed connections exit (after Terminate, or once
 * their statement is cancelled): only then is the slot free. */
active proctype reaper()
{
    byte k;
end:
    do
    :: atomic { closingc > 0 -> closingc--; dispatch(); check() }
    :: atomic { zombie > 0 -> zombie--; check() }
    od
}

#ifndef NOCLOSE
active proctype closer()
{
    byte k;
    atomic {
        closing = 1;
        k = 0;
        do
        :: k < qlen -> fail[q[k]] = 1; k++
        :: else -> break
        od;
        k = 0;
        idle = 0; /* idle connections are closed */
        deferred = 0;
        check()
    };
    /* join the maintenance thread (its last pass closes the checks not
     * finished), then wait for acquirers and connects in progress (aborted
     * through closing); `checking` is not waited for: nobody is left to
     * empty it */
    mjoined;
    (inacq == 0 && opening == 0);
    /* drain borrowed connections until the drain deadline */
    if
    :: inuse == 0
    :: true
    fi;
    atomic { closed = 1; check() }
}
#endif
