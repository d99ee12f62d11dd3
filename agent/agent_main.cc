// fc-agent: the guest agent, started by fcvm-init as its only child. Its
// stdio is the console; every line it writes is framed (agent/report.h).
// See agent/README.md.
#include <signal.h>
#include <termios.h>
#include <unistd.h>

#include <string>

#include "agent/agent.h"
#include "agent/channel_server.h"
#include "agent/report.h"

int main(int argc, char** argv) {
  // `fc-agent channel`: the control channel's server, started (and
  // restarted) by the agent itself.
  if (argc == 2 && std::string(argv[1]) == "channel") {
    return fcvm::agent::RunChannelServer(fcvm::agent::ChannelServerOptions());
  }
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
  fcvm::agent::AgentOptions options;
  options.channel_argv = {"/proc/self/exe", "channel"};
  return fcvm::agent::RunAgent(options, reporter);
}
