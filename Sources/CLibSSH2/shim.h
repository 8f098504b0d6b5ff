#ifndef BOOTSTRAP_CLIBSSH2_SHIM_H
#define BOOTSTRAP_CLIBSSH2_SHIM_H
#include <libssh2.h>
#include <libssh2_sftp.h>
#include <string.h>

/* Function-like macros of libssh2 are not visible to Swift; these wrappers are. */

static inline LIBSSH2_SESSION *bs_session_init(void) { return libssh2_session_init_ex(NULL, NULL, NULL, NULL); }

static inline int bs_session_disconnect(LIBSSH2_SESSION *s, const char *why) {
    return libssh2_session_disconnect_ex(s, SSH_DISCONNECT_BY_APPLICATION, why, "");
}

static inline LIBSSH2_CHANNEL *bs_channel_open_session(LIBSSH2_SESSION *s) {
    return libssh2_channel_open_ex(s, "session", (unsigned int)strlen("session"),
                                   LIBSSH2_CHANNEL_WINDOW_DEFAULT, LIBSSH2_CHANNEL_PACKET_DEFAULT, NULL, 0);
}

static inline LIBSSH2_CHANNEL *bs_channel_direct_tcpip(LIBSSH2_SESSION *s, const char *host, int port) {
    return libssh2_channel_direct_tcpip_ex(s, host, port, "127.0.0.1", 22);
}

static inline int bs_channel_exec(LIBSSH2_CHANNEL *c, const char *command) {
    return libssh2_channel_process_startup(c, "exec", (unsigned int)strlen("exec"),
                                           command, (unsigned int)strlen(command));
}

static inline ssize_t bs_channel_read(LIBSSH2_CHANNEL *c, int stream, char *buf, size_t len) {
    return libssh2_channel_read_ex(c, stream, buf, len);
}

static inline ssize_t bs_channel_write(LIBSSH2_CHANNEL *c, const char *buf, size_t len) {
    return libssh2_channel_write_ex(c, 0, buf, len);
}

static inline int bs_userauth_publickey_fromfile(LIBSSH2_SESSION *s, const char *user, const char *privkey,
                                                 const char *passphrase) {
    return libssh2_userauth_publickey_fromfile_ex(s, user, (unsigned int)strlen(user), NULL, privkey, passphrase);
}

static inline LIBSSH2_SFTP_HANDLE *bs_sftp_open(LIBSSH2_SFTP *sftp, const char *path, unsigned long flags, long mode) {
    return libssh2_sftp_open_ex(sftp, path, (unsigned int)strlen(path), flags, mode, LIBSSH2_SFTP_OPENFILE);
}

static inline int bs_sftp_unlink(LIBSSH2_SFTP *sftp, const char *path) {
    return libssh2_sftp_unlink_ex(sftp, path, (unsigned int)strlen(path));
}

static inline int bs_sftp_close(LIBSSH2_SFTP_HANDLE *h) { return libssh2_sftp_close_handle(h); }

static inline int bs_session_last_error(LIBSSH2_SESSION *s, char **msg) {
    int len = 0;
    return libssh2_session_last_error(s, msg, &len, 0);
}

enum {
    BS_EAGAIN = LIBSSH2_ERROR_EAGAIN,
    BS_BLOCK_INBOUND = LIBSSH2_SESSION_BLOCK_INBOUND,
    BS_BLOCK_OUTBOUND = LIBSSH2_SESSION_BLOCK_OUTBOUND,
    BS_SFTP_READ = LIBSSH2_FXF_READ,
    BS_SFTP_WRITE_NEW = LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT | LIBSSH2_FXF_EXCL,
    BS_ERROR_SFTP_PROTOCOL = LIBSSH2_ERROR_SFTP_PROTOCOL,
};

#endif
