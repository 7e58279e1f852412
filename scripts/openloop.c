/* openloop: a constant-rate (open-loop) HTTP/1.1 load generator, for latency at a given load.
 *
 * Request i is due at t0 + i/rate whatever happened to earlier ones; its latency is measured
 * from that intended time, not from when a connection was free to send it, so a stall shows
 * up in every request it delayed (no coordinated omission, as in wrk2). Due requests queue
 * until one of the keep-alive connections is idle. Single thread, epoll, a timerfd for the
 * schedule. Responses must carry Content-Length (nginx's and the proxy's do).
 *
 * usage: openloop HOST PORT PATH RATE SECONDS CONNECTIONS [WARMUP_SECONDS]
 * prints one JSON object: requests, errors, achieved rate, latency percentiles in µs.
 * Build: cc -O2 -o openloop openloop.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define BUF 65536

typedef struct {
    int fd;
    int busy;
    int64_t intended;
    size_t have;
    char buf[BUF];
} conn_t;

static struct sockaddr_in addr;
static char request[512];
static size_t request_len;

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int open_conn(void) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        perror("openloop: connect");
        exit(2);
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static int cmp64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Bytes of one complete response at the start of buf, 0 if incomplete, -1 if unusable. */
static long response_size(const char *buf, size_t have, int *status) {
    const char *end = memmem(buf, have, "\r\n\r\n", 4);
    if (!end) return 0;
    size_t head = (size_t)(end - buf) + 4;
    if (sscanf(buf, "HTTP/1.%*c %d", status) != 1) return -1;
    long length = -1;
    for (const char *p = buf; p < end; p++) {
        if ((p == buf || p[-1] == '\n') && strncasecmp(p, "content-length:", 15) == 0) {
            length = strtol(p + 15, NULL, 10);
            break;
        }
    }
    if (length < 0) return -1;
    return have >= head + (size_t)length ? (long)(head + length) : 0;
}

int main(int argc, char **argv) {
    if (argc < 7) {
        fprintf(stderr, "usage: %s HOST PORT PATH RATE SECONDS CONNECTIONS [WARMUP]\n", argv[0]);
        return 2;
    }
    double rate = atof(argv[4]), seconds = atof(argv[5]);
    int nconn = atoi(argv[6]);
    double warmup = argc > 7 ? atof(argv[7]) : 1.0;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)atoi(argv[2]));
    inet_pton(AF_INET, argv[1], &addr.sin_addr);
    request_len = (size_t)snprintf(request, sizeof request,
                                   "GET %s HTTP/1.1\r\nHost: %s:%s\r\n\r\n", argv[3], argv[1], argv[2]);

    long total = (long)(rate * (seconds + warmup));
    int64_t interval = (int64_t)(1e9 / rate);
    int64_t *queue = malloc(sizeof(int64_t) * (size_t)total);  /* intended times, FIFO */
    int64_t *lat = malloc(sizeof(int64_t) * (size_t)total);
    long qhead = 0, qtail = 0, issued = 0, done = 0, recorded = 0, errors = 0;
    int next_conn = 0;
    conn_t *conns = calloc((size_t)nconn, sizeof(conn_t));
    int ep = epoll_create1(EPOLL_CLOEXEC);
    for (int i = 0; i < nconn; i++) {
        conns[i].fd = open_conn();
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev);
    }
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    struct epoll_event tev = {.events = EPOLLIN, .data.u32 = UINT32_MAX};
    epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &tev);

    int64_t t0 = now_ns() + 10000000LL, record_from = t0 + (int64_t)(warmup * 1e9);
    int64_t give_up = t0 + (int64_t)((seconds + warmup + 5.0) * 1e9);
    struct epoll_event events[256];
    while (done < total) {
        int64_t now = now_ns();
        if (now > give_up) break;
        while (issued < total && t0 + issued * interval <= now) queue[qtail++] = t0 + (issued++) * interval;
        /* round robin, so no connection idles into the server's keep-alive timeout */
        for (int k = 0; k < nconn && qhead < qtail; k++) {
            int i = (next_conn + k) % nconn;
            if (conns[i].busy) continue;
            next_conn = (i + 1) % nconn;
            conns[i].intended = queue[qhead++];
            conns[i].busy = 1;
            if (write(conns[i].fd, request, request_len) != (ssize_t)request_len) {
                fprintf(stderr, "openloop: short write\n");
                return 2;
            }
        }
        if (issued < total) {
            struct itimerspec due = {0};
            int64_t next = t0 + issued * interval;
            due.it_value.tv_sec = next / 1000000000LL;
            due.it_value.tv_nsec = next % 1000000000LL;
            timerfd_settime(tfd, TFD_TIMER_ABSTIME, &due, NULL);
        }
        int n = epoll_wait(ep, events, 256, 100);
        for (int e = 0; e < n; e++) {
            uint32_t id = events[e].data.u32;
            if (id == UINT32_MAX) {
                uint64_t expirations;
                ssize_t ignored = read(tfd, &expirations, sizeof expirations);
                (void)ignored;
                continue;
            }
            conn_t *c = &conns[id];
            ssize_t got = read(c->fd, c->buf + c->have, BUF - c->have);
            int status = 0;
            long size = got > 0 ? response_size(c->buf, c->have + (size_t)got, &status) : -1;
            if (got > 0) c->have += (size_t)got;
            if (size == 0) continue;
            int64_t end = now_ns();
            /* a server closing an idle connection is no error; one that owes a response is */
            if ((size < 0 && c->busy) || (size > 0 && (status < 200 || status > 299))) errors++;
            if (c->busy) {
                if (size > 0 && c->intended >= record_from) lat[recorded++] = end - c->intended;
                done++;
            }
            c->busy = 0;
            if (size < 0) { /* closed or unparsable: a new connection takes its place */
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd);
                c->fd = open_conn();
                struct epoll_event ev = {.events = EPOLLIN, .data.u32 = id};
                epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
                c->have = 0;
            } else {
                memmove(c->buf, c->buf + size, c->have - (size_t)size);
                c->have -= (size_t)size;
            }
        }
    }
    qsort(lat, (size_t)recorded, sizeof(int64_t), cmp64);
#define PCT(p) (recorded ? lat[(long)((p) * (double)(recorded - 1))] / 1000.0 : 0.0)
    printf("{\"requests\": %ld, \"recorded\": %ld, \"errors\": %ld, \"incomplete\": %ld, "
           "\"rate\": %.1f, \"p50_us\": %.1f, \"p90_us\": %.1f, \"p99_us\": %.1f, "
           "\"p999_us\": %.1f, \"max_us\": %.1f}\n",
           done, recorded, errors, total - done, rate, PCT(0.5), PCT(0.9), PCT(0.99), PCT(0.999),
           recorded ? lat[recorded - 1] / 1000.0 : 0.0);
    return 0;
}
