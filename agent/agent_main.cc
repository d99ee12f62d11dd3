// fc-agent: the guest agent, started by fcvm-init as its only child. Its
// stdio is the console; every line it writes is framed (agent/report.h).
// See agent/README.md.
#include <signal.h>
#include <termios.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/report.h"

int main() {
  // A host that goes away must not kill the agent mid-write.
  signal(SIGPIPE, SIG_IGN);
  // The host sends commands ("@fcvm stop") on the console: no echo, so they
  // do not come back mixed into the output.
  termios mode;
  if (tcgetattr(STDIN_FILENO, &mode) == 0) {
    mode.c_lflag &= ~(ECHO | ECHONL);
    tcsetattr(STDIN_FILENO, TCSANOW, &mode);
  }
  fcvm::agent::Reporter reporter(STDOUT_FILENO);
  return fcvm::agent::RunAgent(fcvm::agent::AgentOptions(), reporter);
}
