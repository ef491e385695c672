#ifndef CAIRN_CYAML_SHIM_H
#define CAIRN_CYAML_SHIM_H
#include <yaml.h>
#endif
