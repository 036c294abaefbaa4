#ifndef SKIPPER_CLIBPQ_SHIM_H
#define SKIPPER_CLIBPQ_SHIM_H
#include <libpq-fe.h>
#endif
