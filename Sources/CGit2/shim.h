#ifndef CAIRN_CGIT2_SHIM_H
#define CAIRN_CGIT2_SHIM_H
#include <git2.h>

/* git_libgit2_opts is variadic and not imported into Swift: wrap the options Cairn uses.
   Debian's libgit2 1.5.1 refuses repositories owned by another user unless owner
   validation is turned off. */
static inline int cairn_git_set_owner_validation(int enabled) {
    return git_libgit2_opts(GIT_OPT_SET_OWNER_VALIDATION, enabled);
}
#endif
