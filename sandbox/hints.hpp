// What the operator should do next when the jail's setup fails in the child.
//
// The child can only send a fixed record (init_protocol.h): errno, the kind
// of step (kiln_hint) and "step argument". The server turns it into an
// Error whose message is advice for that (kind, errno), as nsjail and crun
// do: an EPERM from the user-namespace clone names the sysctls and the
// AppArmor setting to check, rather than "Operation not permitted" alone.
#pragma once

#include "common/result.hpp"
#include "sandbox/child.hpp"

namespace kiln::sandbox {

// The advice for a failure of that kind with that errno; nullptr if there
// is none beyond the step and strerror.
const char* hint_for(kiln_hint hint, int err) noexcept;

// A record from the setup child or kiln-init as an Error: step "step arg",
// errno, and as message the hint, or "jail setup failed in the child".
// Error::what() then reads "<step>: <hint>: <strerror>".
Error child_failure(const ChildError& e);

}  // namespace kiln::sandbox
