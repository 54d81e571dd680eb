#include "cli/app.hpp"

int main(int argc, char** argv) { return bsp::cli::run(argc, argv); }
