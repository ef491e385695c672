#ifndef CAIRN_COPENBLAS_SHIM_H
#define CAIRN_COPENBLAS_SHIM_H
#include <cblas.h>
#endif
