// The saved version of native/kernels_attention.cc (BASE, e.g. `git show HEAD:native/kernels_attention.cc >
// /tmp/attn_base.cc`) under other names, so that ab.cc can time it against the working copy in one process.
#define attention_forward attention_forward_base
#define attention_backward attention_backward_base
#include "kernels.h"
#include BASE
