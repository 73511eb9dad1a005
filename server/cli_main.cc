// loraserve-cli: see server/cli.h for the commands and exit codes.
#include <iostream>
#include <string>
#include <vector>

#include "server/cli.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return loraserve::RunCli(args, std::cout, std::cerr);
}
