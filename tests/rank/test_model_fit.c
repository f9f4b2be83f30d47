#include "check.h"
int main(void) { return test_report(); }
