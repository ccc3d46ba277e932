/* The pool's per-state connection lists (see pool_internal.h). */
#include "pool/pool_internal.h"

void agec__list_push_head(conn_list *l, agec_conn *c)
{
    c->prev = NULL;
    c->next = l->head;
    if (l->head != NULL)
        l->head->prev = c;
    else
        l->tail = c;
    l->head = c;
    l->count++;
}

void agec__list_push_tail(conn_list *l, agec_conn *c)
{
    c->next = NULL;
    c->prev = l->tail;
    if (l->tail != NULL)
        l->tail->next = c;
    else
        l->head = c;
    l->tail = c;
    l->count++;
}

void agec__list_remove(conn_list *l, agec_conn *c)
{
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        l->head = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    else
        l->tail = c->prev;
    c->prev = c->next = NULL;
    l->count--;
}

conn_list *agec__state_list(agec_pool *p, conn_state s)
{
    switch (s) {
    case CONN_OPENING:
        return &p->opening;
    case CONN_IDLE:
        return &p->idle;
    case CONN_CHECKING:
        return &p->checking;
    case CONN_CLOSING:
        return &p->closing_list;
    case CONN_IN_USE:
        break;
    }
    return &p->in_use;
}

void agec__conn_move_locked(agec_pool *p, agec_conn *c, conn_state to)
{
    agec__list_remove(agec__state_list(p, c->state), c);
    if (c->state == CONN_IDLE && p->deferred_wakeups > p->idle.count)
        p->deferred_wakeups = p->idle.count; /* a deferred one was taken */
    c->state = to;
    agec__list_push_head(agec__state_list(p, to), c);
}
