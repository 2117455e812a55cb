// Secret redaction over a corpus of realistic-looking, fake credentials in
// the places agents put them: source literals, env files, configs, URLs.
// Every fake key is assembled at run time so that secret scanners do not
// flag this file.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "security/audit/redact.hpp"

namespace kiln::audit {
namespace {

std::string rep(const std::string& s, int n) {
    std::string out;
    for (int i = 0; i < n; ++i) out += s;
    return out;
}

struct Case {
    std::string name;
    std::string code;
    std::string secret;  // must not survive
    std::string kind;    // must be reported
};

std::vector<Case> corpus() {
    const std::string aws_id = std::string("AKIA") + "IOSFODNN7EXAMPLE";
    const std::string aws_secret = std::string("wJalrXUtnFEMI/K7MDENG/") + "bPxRfiCYEXAMPLEKEY";
    const std::string ghp = std::string("ghp_") + "1a2B3c4D5e6F7g8H9i0JkLmNoPqRsTuVwXyZ";
    const std::string gh_pat = std::string("github_pat_") + "11ABCDEFG0123456789_" + rep("aBcDeFgHiJ", 6);
    const std::string openai = std::string("sk-") + "proj-" + rep("Ab3dE", 10);
    const std::string openai_legacy = std::string("sk-") + rep("T3BlbkFJ", 6);
    const std::string anthropic = std::string("sk-ant-") + "api03-" + rep("xY9_zQ-", 13) + "AA";
    const std::string slack = std::string("xoxb-") + "123456789012-1234567890123-" + "AbCdEfGhIjKlMnOpQrStUvWx";
    const std::string slack_hook = std::string("https://hooks.slack.com/services/") + "T00000000/B00000000/" + "XXXXXXXXXXXXXXXXXXXXXXXX";
    const std::string jwt = std::string("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.") +
                            "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ." +
                            "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
    const std::string pem_body = rep("MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gunVTLw\n", 5);
    const std::string rsa = std::string("-----BEGIN RSA ") + "PRIVATE KEY-----\n" + pem_body + "-----END RSA PRIVATE KEY-----";
    const std::string openssh = std::string("-----BEGIN OPENSSH ") + "PRIVATE KEY-----\n" + pem_body + "-----END OPENSSH PRIVATE KEY-----";
    const std::string google = std::string("AIza") + "SyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY";
    const std::string stripe = std::string("sk_live_") + "4eC39HqLyjWDarjtT1zdp7dc";

    return {
        {"aws access key id in python", "client = boto3.client('s3', aws_access_key_id='" + aws_id + "')", aws_id, "aws_access_key_id"},
        {"aws access key id unquoted in ini", "[default]\naws_access_key_id = " + aws_id + "\n", aws_id, "aws_access_key_id"},
        {"aws secret in ini", "aws_secret_access_key = \"" + aws_secret + "\"\n", aws_secret, "assigned_secret"},
        {"github classic token", "headers = {'Authorization': 'token " + ghp + "'}", ghp, "github_token"},
        {"github fine-grained token", "export GH_TOKEN=" + gh_pat, gh_pat, "github_token"},
        {"openai project key", "openai.api_key = \"" + openai + "\"", openai, "openai_api_key"},
        {"openai legacy key", "OPENAI_API_KEY=" + openai_legacy, openai_legacy, "openai_api_key"},
        {"anthropic key", "client = anthropic.Anthropic(api_key=\"" + anthropic + "\")", anthropic, "anthropic_api_key"},
        {"slack bot token", "slack = WebClient(token=\"" + slack + "\")", slack, "slack_token"},
        {"slack webhook", "requests.post('" + slack_hook + "', json=msg)", "XXXXXXXXXXXXXXXXXXXXXXXX", "slack_webhook"},
        {"jwt bearer", "curl -H 'Authorization: Bearer " + jwt + "' http://127.0.0.1/", jwt, "jwt"},
        {"rsa private key", "key = '''" + rsa + "'''\n", "MIIEowIBAAKCAQEA", "private_key"},
        {"openssh private key", "cat > id_ed25519 <<EOF\n" + openssh + "\nEOF\n", "MIIEowIBAAKCAQEA", "private_key"},
        {"private key cut by the size cap", std::string("-----BEGIN EC ") + "PRIVATE KEY-----\n" + pem_body, "MIIEowIBAAKCAQEA", "private_key"},
        {"google api key", "url = f'https://maps.googleapis.com/?key=" + google + "'", google, "google_api_key"},
        {"stripe live key", "stripe.api_key = '" + stripe + "'", stripe, "stripe_key"},
        {"python password literal", "password = \"hunter2-correct-horse\"\nlogin(user, password)", "hunter2-correct-horse", "assigned_secret"},
        {"js const secret", "const clientSecret = 'c0ffee-dead-beef-1234';", "c0ffee-dead-beef-1234", "assigned_secret"},
        {"json password", "{\"user\": \"admin\", \"password\": \"Pa55w0rd!2024\"}", "Pa55w0rd!2024", "assigned_secret"},
        {"yaml api key", "service:\n  api_key: 'k3y-0f-th3-s3rv1c3'\n", "k3y-0f-th3-s3rv1c3", "assigned_secret"},
        {"env file password", "DB_HOST=localhost\nDB_PASSWORD=s3cr3tPassw0rd\n", "s3cr3tPassw0rd", "assigned_secret"},
        {"go assignment", "dbPassword := \"go-s3cret-value\"", "go-s3cret-value", "assigned_secret"},
        {"password comparison", "if password == 'letmein123':", "letmein123", "assigned_secret"},
        {"database url", "engine = create_engine('postgresql://admin:Sup3rS3cret@db.internal:5432/app')", "Sup3rS3cret", "url_password"},
    };
}

TEST_CASE("every secret in the corpus is redacted and named") {
    for (const auto& c : corpus()) {
        CAPTURE(c.name);
        Redaction r = redact_secrets(c.code);
        CHECK_MESSAGE(r.text.find(c.secret) == std::string::npos, r.text);
        CHECK_MESSAGE(r.counts.count(c.kind) == 1, r.text);
        CHECK(r.text.find("[REDACTED:") != std::string::npos);
    }
}

TEST_CASE("ordinary code is left alone") {
    const std::vector<std::string> clean = {
        "import numpy as np\nprint(np.arange(10).sum())\n",
        "password = input('Password: ')\nif check(password):\n    pass\n",
        "def login(password: str) -> bool:\n    return len(password) > 8\n",
        "max_tokens = 1024\ntoken_count = len(tokens)\n",
        "for task in tasks:\n    skip = task.startswith('sk-')\n",
        "digest = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'\n",
        "TAKIAWAYFROMHOME1234567 = 1\n",
        "url = 'https://example.com/path?q=1'\n",
        "token = os.environ['API_TOKEN']\n",
        "export PASSWORD=$(cat /run/secrets/db)\n",
    };
    for (const auto& code : clean) {
        CAPTURE(code);
        Redaction r = redact_secrets(code);
        CHECK(r.text == code);
        CHECK(r.counts.empty());
    }
}

TEST_CASE("several secrets in one file are all counted; the code around them is kept") {
    std::string key1 = std::string("ghp_") + rep("a1B2", 9);
    std::string key2 = std::string("ghp_") + rep("c3D4", 9);
    std::string code = "A = '" + key1 + "'\nB = '" + key2 + "'\nprint(A, B)\n";
    Redaction r = redact_secrets(code);
    CHECK(r.counts["github_token"] == 2);
    CHECK(r.text == "A = '[REDACTED:github_token]'\nB = '[REDACTED:github_token]'\nprint(A, B)\n");
}

TEST_CASE("large inputs are handled without blowing the stack") {
    std::string big = rep("x = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'  # sk-", 20000);
    Redaction r = redact_secrets(big);
    CHECK(r.text.size() == big.size());
}

}  // namespace
}  // namespace kiln::audit
