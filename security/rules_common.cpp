#include "security/rules.hpp"
