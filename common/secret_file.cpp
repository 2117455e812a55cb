#include "common/secret_file.hpp"

#include <sys/stat.h>

#include <fstream>
#include <sstream>

namespace kiln {

Result<std::string> read_secret_file(const std::string& path, const char* what) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return sys_error(std::string("stat ") + what + " " + path);
    if (st.st_mode & 077)
        return make_error(std::string("load ") + what + " " + path,
                          "the key file is readable or writable by group or others; run: chmod 600 " + path);
    std::ifstream in(path, std::ios::binary);
    if (!in) return sys_error(std::string("open ") + what + " " + path);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

}  // namespace kiln
