/*
 * Promela model of agec pipelining behind PgBouncer 1.18 in transaction
 * mode: the send rule of a mux lane (src/mux/lane.c send_pending) and of a
 * batch with a Sync per statement (src/cypher/batch_run.c) against
 * PgBouncer's server release rule. Checked with spin by
 * tests/model/check-pooler-model (CTest model_pooler).
 *
 * Why it exists: the mux lost answers behind PgBouncer 1.18 (issue 28).
 * PgBouncer counts the client's Syncs and releases its server connection
 * once every Sync it has read is answered, even when the client's next
 * Execute is already forwarded to that server and its Sync not read yet;
 * that statement then runs on one server and its Sync reaches another.
 * The fix: behind a pooler a statement is sent only when nothing is
 * outstanding on the connection. This model checks that rule, and that
 * the earlier rules (send after the previous result, before its Sync
 * answer; or a whole batch at once) break.
 *
 * What is modelled
 * - One client connection (a mux lane, or a batch), NS statements, each an
 *   Execute message E(x) and a Sync message S on the connection's byte
 *   stream (one FIFO channel). One driver reads the answers in order.
 * - PgBouncer 1.18 (its src/server.c, SBUF_EV_FLUSH, and src/client.c):
 *   takes one message at a time from the client or from either server, in
 *   any interleaving (its event loop may read the client's Execute and its
 *   Sync in two reads, with server answers handled in between). A client
 *   message with no server linked links one (either: other clients may
 *   hold the other, and server_round_robin is a setting); each S counts
 *   one expected ReadyForQuery (expect_rfq_count); a ReadyForQuery from the
 *   linked server counts one down and, at zero, unlinks (releases) the
 *   server. An answer from a server not linked to our client goes to
 *   another client (lost to us).
 * - Two PostgreSQL servers: each runs the messages it gets in order; an
 *   Execute succeeds or fails (chosen by spin), and after a failure every
 *   Execute is skipped until the next Sync; a Sync gives ReadyForQuery.
 *
 * What is left out: Parse/Bind/Describe (they travel with the Execute and
 * are answered before its result), several client connections of agec,
 * the mux's role hand-off (src/mux/mux.pml), deadlines and cancel, named
 * statements, PgBouncer's pool limits and timeouts.
 *
 * Rules (-D):
 * - default: send the next statement only when nothing is outstanding
 *   (every sent Sync answered): the rule agec follows behind a pooler.
 * - BUG_SEND_AFTER_RESULT: send when the previous statement's result is
 *   in, even if its Sync is not answered (the mux before the fix).
 * - BUG_BATCH: send every statement at once, a Sync each (a pipelined
 *   batch, as agec sends on a direct connection).
 *
 * Properties (assertions; the driver waiting forever is an invalid end
 * state): each statement gets its own answer (its result or its error),
 * then its Sync's answer; no answer is lost or goes elsewhere.
 */
#ifndef NS
#define NS 2
#endif

#define NONE 255
#define M_E 1 /* client: Execute(x) */
#define M_S 2 /* client: Sync */
#define A_OK 3 /* server: result of x */
#define A_ERR 4 /* server: error of x */
#define A_Z 5 /* server: ReadyForQuery */

chan c2p = [2 * NS] of { byte, byte };  /* client -> PgBouncer */
chan p2c = [2 * NS] of { byte, byte };  /* PgBouncer -> client */
chan p2s[2] = [2 * NS] of { byte, byte }; /* PgBouncer -> server k */
chan s2p[2] = [2 * NS] of { byte, byte }; /* server k -> PgBouncer */

byte link = NONE; /* the server linked to our client */
byte rfq;         /* Syncs read from the client and not answered */
bool elsewhere;   /* an answer of ours went to another client */

proctype server(byte k)
{
    byte m, x;
    bool aborted = false;
end:
    do
    :: p2s[k]?m, x ->
        if
        :: m == M_E && aborted -> skip /* skipped until the Sync */
        :: m == M_E && !aborted ->
            if
            :: s2p[k]!A_OK, x
            :: s2p[k]!A_ERR, x; aborted = true
            fi
        :: m == M_S -> aborted = false; s2p[k]!A_Z, 0
        fi
    od
}

/* An answer from server k (PgBouncer's SBUF_EV_FLUSH after forwarding). */
inline answer(k)
{
    if
    :: link == k ->
        p2c!m, x;
        if
        :: m == A_Z -> rfq--; if :: rfq == 0 -> link = NONE :: else -> skip fi
        :: else -> skip
        fi
    :: else -> elsewhere = true /* the next client of server k gets it */
    fi
}

/* PgBouncer 1.18 in transaction mode, for our one client connection. */
proctype pgbouncer()
{
    byte m, x;
end:
    do
    :: atomic {
           c2p?m, x ->
           if
           :: link == NONE -> if :: link = 0 :: link = 1 fi
           :: else -> skip
           fi;
           if
           :: m == M_S -> rfq++
           :: else -> skip
           fi;
           p2s[link]!m, x
       }
    :: atomic { s2p[0]?m, x -> answer(0) }
    :: atomic { s2p[1]?m, x -> answer(1) }
    od
}

/* The lane's (or the batch's) driver: sends by its rule, reads in order. */
proctype client()
{
    byte sent = 0;   /* statements sent (E and S) */
    byte head = 0;   /* the statement whose answers come next */
    bool got = false; /* head's result or error is in (its Sync's answer is next) */
    byte m, x;
    do
    :: head == NS -> break
    /* send by the rule */
    :: sent < NS &&
#if defined(BUG_BATCH)
       true
#elif defined(BUG_SEND_AFTER_RESULT)
       (sent == head || (sent == head + 1 && got))
#else
       sent == head /* every Sync sent is answered */
#endif
       -> atomic { c2p!M_E, sent; c2p!M_S, 0; sent++ }
    /* read the next answer */
    :: p2c?m, x ->
        assert(head < sent);
        if
        :: !got -> assert(m == A_OK || m == A_ERR); assert(x == head); got = true
        :: got -> assert(m == A_Z); got = false; head++
        fi
    od;
    assert(!elsewhere)
}

init {
    atomic {
        run server(0);
        run server(1);
        run pgbouncer();
        run client()
    }
}
