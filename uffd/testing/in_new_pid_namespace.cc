// in_new_pid_namespace PROGRAM [ARG...]: runs PROGRAM as the first process
// (pid 1) of a new pid namespace and exits as it does. Needs root. For the
// memory server's tests: a server in a pid namespace of its own sees every
// peer's SO_PEERCRED pid as 0, as a jailed one does.
//
// Signals for the process group (what a test's Subprocess sends) reach
// PROGRAM directly; this process ignores the ones it would die of, so that
// it waits for PROGRAM rather than leave it behind.
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <initializer_list>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: in_new_pid_namespace PROGRAM [ARG...]\n");
    return 2;
  }
  if (unshare(CLONE_NEWPID) != 0) {
    std::fprintf(stderr, "in_new_pid_namespace: unshare: %s\n",
                 std::strerror(errno));
    return 2;
  }
  const pid_t child = fork();
  if (child < 0) {
    std::fprintf(stderr, "in_new_pid_namespace: fork: %s\n",
                 std::strerror(errno));
    return 2;
  }
  if (child == 0) {
    execv(argv[1], argv + 1);
    std::fprintf(stderr, "in_new_pid_namespace: exec %s: %s\n", argv[1],
                 std::strerror(errno));
    _exit(127);
  }
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGUSR1}) signal(s, SIG_IGN);
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 2;
}
