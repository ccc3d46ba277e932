/*
 * Promela model of one mux lane (src/mux/lane.c, mux.c): the queues, the
 * I/O role passed from waiter to waiter, results read in order and handed
 * to their owners, deadline abandonment, the cancel only when every
 * statement in flight has expired, and shutdown. Checked with spin by
 * tests/model/check-mux-model (CTest model_mux).
 *
 * What is modelled
 * - The lane lock: every critical section is one atomic block.
 * - NC callers, one statement each (its id = the caller's number): submit
 *   (queue it), then wait: take the role when free, else sleep until the
 *   statement completes or the role is offered to it.
 * - The role holder (driver): sends every queued statement (not while a
 *   cancel drains), reads the next result from the server and gives it to
 *   the head of the in-flight list (dropped if that one was abandoned),
 *   and leaves when its own statement completed, offering the role to a
 *   waiter whose statement is still outstanding.
 * - The server: runs statements in the order sent; a cancel request, when
 *   it reaches the backend, fails the statement running then (57014) or
 *   is ignored when idle.
 * - Deadlines: a caller's deadline may pass at any time (once): a queued
 *   statement is removed, one in flight is abandoned (left in the list so
 *   results keep their order); both complete with a timeout. When nothing
 *   live is left in flight, a cancel is sent and nothing new is sent until
 *   the in-flight list is empty and the cancel was delivered.
 * - Shutdown may come at any time: queued and in-flight statements
 *   complete with "closed", the driver leaves, submissions are refused.
 *
 * Properties (assertions; a caller that never returns is an invalid end state)
 * - every submitted statement completes exactly once;
 * - a result goes to the statement it belongs to, never to another;
 * - no live statement gets the error of a cancel (only expired ones may);
 * - everyone returns (with close or without it).
 *
 * Seeded defects (check-mux-model expects spin to find each)
 * - BUG_WRONG_OWNER: an in-flight statement abandoned at its deadline is
 *   taken out of the in-flight list: the next result goes to the wrong op.
 * - BUG_CANCEL_EARLY: the cancel is sent as soon as one statement in
 *   flight expires, not when all have.
 * - BUG_NO_HANDOFF: the leaving driver offers the role to nobody.
 * - BUG_LOST_OFFER: a waiter offered the role whose deadline passes before
 *   it takes the role returns without passing the offer on (found by this
 *   model in the first version of mux.c: a waiter with no deadline then
 *   slept forever).
 */
#ifndef NC
#define NC 3
#endif

#define NONE 255
#define R_TIMEOUT 100
#define R_CLOSED 101
#define R_CANCELLED 102

byte pend[NC];
byte npend;
byte fl[NC];
byte nfl;
bool abandoned[NC];
byte done[NC];
byte got[NC];
bool waiting[NC];
bool offer[NC];
byte driver = NONE;
bool closed;
bool draining;
bool cancel_req;
byte nlive;

/* Scratch used only inside atomic blocks: not part of the state. */
hidden byte x, j, k, h, rid;
hidden byte rc;

chan to_server = [NC] of { byte };
chan from_server = [NC] of { byte, byte };

inline complete(i, r)
{
    assert(done[i] == 0);
    done[i] = 1;
    got[i] = r
}

/* Remove element k of the queue / of the in-flight list. */
inline pend_out(k)
{
    j = k;
    do
    :: j + 1 < npend -> pend[j] = pend[j + 1]; j++
    :: else -> break
    od;
    npend--
}

inline fl_out(k)
{
    j = k;
    do
    :: j + 1 < nfl -> fl[j] = fl[j + 1]; j++
    :: else -> break
    od;
    nfl--
}

/* The caller's deadline passed (lane lock held). */
inline expire(me)
{
    k = 0;
    do
    :: k < npend && pend[k] == me -> pend_out(k); complete(me, R_TIMEOUT); break
    :: k < npend && pend[k] != me -> k++
    :: k >= npend -> break
    od;
    k = 0;
    do
    :: k < nfl && fl[k] == me && !abandoned[me] ->
#ifdef BUG_WRONG_OWNER
        fl_out(k);
#else
        abandoned[me] = true;
#endif
        nlive--;
        complete(me, R_TIMEOUT);
        break
    :: k < nfl && (fl[k] != me || abandoned[me]) -> k++
    :: k >= nfl -> break
    od;
#ifdef BUG_CANCEL_EARLY
    if
    :: nfl > 0 && !draining && got[me] == R_TIMEOUT -> draining = true; cancel_req = true
    :: else -> skip
    fi
#else
    if
    :: nfl > 0 && nlive == 0 && !draining -> draining = true; cancel_req = true
    :: else -> skip
    fi
#endif
}

inline send_all()
{
    if
    :: draining && nfl == 0 && !cancel_req -> draining = false
    :: else -> skip
    fi;
    do
    :: !draining && !closed && npend > 0 ->
        x = pend[0];
        pend_out(0);
        fl[nfl] = x;
        nfl++;
        nlive++;
        to_server!x
    :: else -> break
    od
}

inline offer_role()
{
    k = 0;
    do
    :: k < NC && waiting[k] && done[k] == 0 -> offer[k] = true; break
    :: k < NC && !(waiting[k] && done[k] == 0) -> k++
    :: k >= NC -> break
    od
}

inline leave_role()
{
    driver = NONE;
#ifndef BUG_NO_HANDOFF
    k = 0;
    do
    :: k < NC && waiting[k] && done[k] == 0 -> offer[k] = true; break
    :: k < NC && !(waiting[k] && done[k] == 0) -> k++
    :: k >= NC -> break
    od
#endif
}

proctype server()
{
    byte id;
end:
    do
    :: to_server?id ->
        if
        :: cancel_req -> cancel_req = false; from_server!id, 1
        :: true -> from_server!id, 0
        fi
    :: cancel_req -> cancel_req = false /* reaches an idle backend: ignored */
    od
}

proctype caller(byte me)
{
    bool dl = false, offered = false;
    atomic {
        if
        :: closed -> complete(me, R_CLOSED)
        :: else -> pend[npend] = me; npend++
        fi
    }
    do
    :: atomic { done[me] == 1 -> waiting[me] = false; break }
    :: atomic { !dl && done[me] == 0 -> dl = true; expire(me) }
    :: atomic { done[me] == 0 && driver == NONE && !closed -> driver = me; waiting[me] = false; offered = false } ->
        /* the driver's loop */
        do
        :: atomic {
               driver == me ->
               if
               :: closed || done[me] == 1 -> leave_role(); break
               :: else -> send_all()
               fi
           }
        :: atomic {
               driver == me && done[me] == 0 && !closed && nempty(from_server) ->
               from_server?rid, rc;
               h = fl[0];
               fl_out(0);
               if
               :: !abandoned[h] -> nlive--; if :: rc != 0 -> complete(h, R_CANCELLED) :: else -> complete(h, rid) fi
               :: else -> skip
               fi
           }
        :: atomic { driver == me && !dl && done[me] == 0 -> dl = true; expire(me) }
        od
    :: atomic { done[me] == 0 && (driver != NONE || closed) -> waiting[me] = true } ->
        atomic { done[me] == 1 || offer[me] -> offered = offer[me]; offer[me] = false }
    od;
    /* Offered the role but done without taking it (its deadline passed,
     * or the statement completed meanwhile): pass the offer on. */
#ifndef BUG_LOST_OFFER
    atomic {
        if
        :: offered && driver == NONE -> offer_role()
        :: else -> skip
        fi
    }
#endif
    /* Its own outcome, exactly once. */
    assert(done[me] == 1);
    assert(got[me] == me || got[me] == R_TIMEOUT || got[me] == R_CLOSED);
}

proctype closer()
{
    atomic {
        closed = true;
        k = 0;
        do
        :: k < npend -> complete(pend[k], R_CLOSED); k++
        :: else -> break
        od;
        npend = 0;
        k = 0;
        do
        :: k < nfl -> if :: !abandoned[fl[k]] -> abandoned[fl[k]] = true; nlive--; complete(fl[k], R_CLOSED) :: else -> skip fi; k++
        :: else -> break
        od
    }
}

init {
    byte i = 0;
    atomic {
        run server();
        do
        :: i < NC -> run caller(i); i++
        :: else -> break
        od;
#ifndef NOCLOSE
        run closer()
#endif
    }
}
