/* The thin client every simulated tool of a lab host runs: `labnode TOOL ARGS...`.
 *
 * It hands the call to the host's fork server (lab/labnode/forkserver.py) over /run/labnode/forkserver.sock:
 * argv, environment (with PYTHONPATH=/opt/labnode, as the old wrapper set it), working directory, umask, ignored
 * signals, and its stdin/stdout/stderr as file descriptors (SCM_RIGHTS). The server forks a child with the caller's
 * credentials (SO_PEERCRED) that runs the tool; this client forwards the signals it gets, waits for the exit status
 * and ends the same way (exit code, or the same signal). If it cannot reach the server, or LABNODE_DIRECT is set,
 * it execs `python3 -m labnode TOOL ARGS` itself: the same behaviour, without the saving.
 *
 * `labnode --forkserver-status` prints how many requests the server has served (for the lab's tests).
 * Compiled by `scripts/lab up` with the Swift toolchain's clang (or cc); see lab/labctl.py. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define SOCKET_PATH "/run/labnode/forkserver.sock"
#define PYTHON "/usr/bin/python3"
#define PYTHONPATH_VALUE "/opt/labnode"

enum { EXITED = 1, SIGNALED = 2, STATUS = 3, REFUSED = 4 };

struct __attribute__((packed)) header {
    char magic[4];
    uint32_t fdmask;
    uint32_t umask;
    uint64_t ignored;
    uint32_t argc;
    uint32_t envc;
    uint32_t paylen;
};

struct __attribute__((packed)) reply {
    uint32_t kind;
    int32_t value;
};

extern char **environ;
static int server = -1;
static const int forwarded[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGALRM, SIGWINCH};

/* The old wrapper: PYTHONPATH=/opt/labnode exec /usr/bin/python3 -m labnode TOOL "$@" */
static void run_directly(int argc, char **argv) {
    char **args = calloc((size_t)argc + 4, sizeof(char *));
    if (args == NULL) {
        perror("labnode");
        exit(1);
    }
    args[0] = PYTHON;
    args[1] = "-m";
    args[2] = "labnode";
    for (int i = 1; i < argc; i++) args[i + 2] = argv[i];
    setenv("PYTHONPATH", PYTHONPATH_VALUE, 1);
    execv(PYTHON, args);
    fprintf(stderr, "labnode: cannot run %s: %s\n", PYTHON, strerror(errno));
    exit(127);
}

static int write_all(int fd, const void *data, size_t n) {
    const char *p = data;
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads one reply; 0 on success, -1 when the server went away. */
static int read_reply(struct reply *r) {
    char *p = (char *)r;
    size_t got = 0;
    while (got < sizeof *r) {
        ssize_t n = read(server, p + got, sizeof *r - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        got += (size_t)n;
    }
    return 0;
}

static void forward(int sig) {
    int saved = errno;
    uint32_t s = (uint32_t)sig;
    (void)!send(server, &s, sizeof s, MSG_NOSIGNAL | MSG_DONTWAIT);
    errno = saved;
}

struct buffer {
    char *data;
    size_t len, cap;
};

static void append(struct buffer *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (b->len + n + 1 > cap) cap *= 2;
        char *d = realloc(b->data, cap);
        if (d == NULL) {
            perror("labnode");
            exit(1);
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len++] = '\0';
}

static int connect_server(void) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct sockaddr_un addr;
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    strncpy(addr.sun_path, SOCKET_PATH, sizeof addr.sun_path - 1);
    while (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        if (errno == EINTR) continue;
        close(fd);
        return -1;
    }
    return fd;
}

static int send_request(uint32_t argc, uint32_t envc, const struct buffer *payload, uint32_t fdmask,
                        const int *fds, int nfds, uint64_t ignored) {
    struct header h;
    memcpy(h.magic, "LNF1", 4);
    h.fdmask = fdmask;
    mode_t um = umask(0);
    umask(um);
    h.umask = (uint32_t)um;
    h.ignored = ignored;
    h.argc = argc;
    h.envc = envc;
    h.paylen = (uint32_t)payload->len;

    struct iovec iov = {.iov_base = &h, .iov_len = sizeof h};
    union {
        char buf[CMSG_SPACE(3 * sizeof(int))];
        struct cmsghdr align;
    } control;
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    memset(&control, 0, sizeof control);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (nfds > 0) {
        msg.msg_control = control.buf;
        msg.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
        memcpy(CMSG_DATA(c), fds, (size_t)nfds * sizeof(int));
    }
    ssize_t n;
    do {
        n = sendmsg(server, &msg, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return -1;
    if ((size_t)n < sizeof h && write_all(server, (char *)&h + n, sizeof h - (size_t)n) != 0) return -1;
    return payload->len ? write_all(server, payload->data, payload->len) : 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: labnode TOOL [ARGS...]\n");
        return 2;
    }
    int status_query = strcmp(argv[1], "--forkserver-status") == 0;
    const char *direct = getenv("LABNODE_DIRECT");
    if (!status_query && direct != NULL && *direct != '\0') run_directly(argc, argv);

    server = connect_server();
    if (server < 0) {
        if (status_query) {
            fprintf(stderr, "labnode: no fork server at %s\n", SOCKET_PATH);
            return 1;
        }
        run_directly(argc, argv);
    }

    struct buffer payload = {0};
    uint32_t nargs = 0, nenv = 0;
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof cwd) == NULL) cwd[0] = '\0';
    append(&payload, cwd, strlen(cwd));
    if (!status_query) {
        for (int i = 1; i < argc; i++, nargs++) append(&payload, argv[i], strlen(argv[i]));
        for (char **e = environ; *e != NULL; e++) {
            if (strncmp(*e, "PYTHONPATH=", 11) == 0) continue;
            append(&payload, *e, strlen(*e));
            nenv++;
        }
        append(&payload, "PYTHONPATH=" PYTHONPATH_VALUE, strlen("PYTHONPATH=" PYTHONPATH_VALUE));
        nenv++;
    }

    int fds[3], nfds = 0;
    uint32_t fdmask = 0;
    for (int fd = 0; fd < 3 && !status_query; fd++) {
        if (fcntl(fd, F_GETFD) != -1) {
            fds[nfds++] = fd;
            fdmask |= 1u << fd;
        }
    }
    uint64_t ignored = 0;
    for (int sig = 1; sig < 64; sig++) {
        struct sigaction sa;
        if (sigaction(sig, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN) ignored |= (uint64_t)1 << sig;
    }

    if (send_request(nargs, nenv, &payload, fdmask, fds, nfds, ignored) != 0) {
        /* Nothing ran: the server has not read a whole request. */
        close(server);
        if (status_query) return 1;
        run_directly(argc, argv);
    }
    free(payload.data);

    /* From now on the tool runs: forward what would have reached it; what the caller ignores stays ignored. */
    for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++) {
        if (ignored & ((uint64_t)1 << forwarded[i])) continue;
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = forward;
        sigemptyset(&sa.sa_mask);
        sigaction(forwarded[i], &sa, NULL);
    }

    struct reply r;
    if (read_reply(&r) != 0) {
        fprintf(stderr, "labnode: lost the fork server while running %s\n", argv[1]);
        return 255;
    }
    switch (r.kind) {
    case EXITED:
        return r.value & 0xff;
    case STATUS:
        printf("%d\n", r.value);
        return 0;
    case SIGNALED: {
        int sig = r.value;
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = SIG_DFL;
        sigaction(sig, &sa, NULL);
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, sig);
        sigprocmask(SIG_UNBLOCK, &set, NULL);
        raise(sig);
        return 128 + sig;
    }
    case REFUSED:
    default:
        close(server);
        if (status_query) return 1;
        run_directly(argc, argv);
    }
    return 1;
}
