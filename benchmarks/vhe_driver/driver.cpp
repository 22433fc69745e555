// Timing driver for vhe.cpp, the C++/NTL reference implementation of Zhou & Wornell's
// integer-vector scheme by Yu, Lai and Payor (MIT License, kept in ../shared/reference/vhe-cpp and
// never copied into this repository). vhe.cpp is compiled unmodified into this file: its main()
// is renamed so that ours can time its functions with the keys built beforehand.
//
// Build (the benchmark suite does this itself, see hennframework/bench/vhecpp.py):
//   g++ -O3 -std=c++17 -I <folder of vhe.cpp> -o vhe_driver driver.cpp -lntl
// Run:
//   vhe_driver --m 16 --ops encrypt,decrypt,key_switch,linear_transform,dot_keygen,dot
// prints one JSON document on stdout: per operation, the seconds of each timed round divided by
// the calls in that round, whether the result decrypted to the expected value, and the sizes of
// the key and ciphertext. Statistics (median etc.) are left to the reader of the JSON.
//
// Operations (one m-vector per call, as vhe.cpp works; T is m x 1 as in its own demo):
//   encrypt           keySwitch(M, w x) with M = keySwitchMatrix(I, T) built once (vhe.cpp's
//                     encrypt() rebuilds M on every call; timing that would measure key generation)
//   decrypt           decrypt(S, c)
//   key_switch        keySwitch(M, c) with M = keySwitchMatrix(S, T2), a switch to another key
//   linear_transform  linearTransform(M, c) with M = linearTransformClient(G, S, T), G in [-2, 2]
//   dot_keygen        innerProdClient(T), the inner-product key (a.k.a. key generation)
//   dot               innerProd(c1, c2, M) with M from innerProdClient(T)

// Renamed, vhe.cpp's main() is an ordinary int function without a return statement: that is
// fine for main() but warned about for any other function, hence the pragma.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wreturn-type"
#define main vhe_original_main
#include "vhe.cpp"
#undef main
#pragma GCC diagnostic pop

#include <NTL/version.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace henn_driver {

struct Options {
    long m = 16;
    std::vector<std::string> ops;
    double min_time = 0.25;   // seconds of timed rounds per operation (at least)
    double max_time = 10.0;   // stop adding rounds after this many seconds
    long min_rounds = 5;
    long max_rounds = 10000;
    double slow = 2.0;        // a single call longer than this: one round, no warm-up
    double round_target = 1e-3;  // fast calls are looped so that one round lasts about this long
    long seed = 1;
    long plain_bound = 100;   // plaintext entries uniform on [-plain_bound, plain_bound]
};

struct Timing {
    std::vector<double> per_call;  // seconds per call, one entry per round
    long calls_per_round = 1;
    bool warmed_up = true;
};

struct Result {
    std::string operation;
    Timing timing;
    bool verified = false;
    std::string detail;
    long key_rows = 0, key_cols = 0;
    double key_bytes = 0, ciphertext_bytes = 0;
    long ciphertext_entries = 0;
    double setup_seconds = 0;
};

double now() {
    using clock = std::chrono::steady_clock;
    return std::chrono::duration<double>(clock::now().time_since_epoch()).count();
}

// Times `call`: one calibration call (also the warm-up), then rounds of `calls_per_round` calls
// until both min_time and min_rounds are reached (or max_time / max_rounds). A call slower than
// `slow` is timed once only: its calibration call is the sample.
Timing time_calls(const std::function<void()>& call, const Options& o) {
    Timing t;
    double start = now();
    call();
    double first = now() - start;
    if (first >= o.slow) {
        t.per_call.push_back(first);
        t.warmed_up = false;
        return t;
    }
    if (first > 0 && first < o.round_target) {
        t.calls_per_round = std::max(1L, static_cast<long>(o.round_target / first));
    }
    double elapsed = 0;
    long rounds = 0;
    while (rounds < o.max_rounds) {
        double begin = now();
        for (long i = 0; i < t.calls_per_round; ++i) call();
        double took = now() - begin;
        t.per_call.push_back(took / static_cast<double>(t.calls_per_round));
        elapsed += took;
        ++rounds;
        if (rounds >= o.min_rounds && elapsed >= o.min_time) break;
        if (elapsed >= o.max_time) break;
    }
    return t;
}

double magnitude_bytes(const ZZ& z) { return static_cast<double>(NumBytes(z)); }

double magnitude_bytes(const vec_ZZ& v) {
    double total = 0;
    for (long i = 0; i < v.length(); ++i) total += magnitude_bytes(v[i]);
    return total;
}

double magnitude_bytes(const mat_ZZ& a) {
    double total = 0;
    for (long i = 0; i < a.NumRows(); ++i) total += magnitude_bytes(a[i]);
    return total;
}

vec_ZZ random_plaintext(long m, long bound) {
    vec_ZZ x;
    x.SetLength(m);
    for (long i = 0; i < m; ++i) x[i] = RandomBnd(2 * bound + 1) - bound;
    return x;
}

mat_ZZ random_g(long m) {
    mat_ZZ g;
    g.SetDims(m, m);
    for (long i = 0; i < m; ++i)
        for (long j = 0; j < m; ++j) g[i][j] = RandomBnd(5) - 2;
    return g;
}

// The keys and ciphertexts of one vector length, built lazily and shared by the operations.
struct Fixture {
    const Options& o;
    long m;
    mat_ZZ T, S, T2, S2, G, M_enc, M_switch, M_linear, M_dot;
    vec_ZZ x1, x2, c1, c2;
    bool have_enc = false, have_switch = false, have_linear = false, have_dot = false;
    double dot_setup_seconds = 0;

    Fixture(const Options& options, long size) : o(options), m(size) {
        T = getRandomMatrix(m, 1, tBound);
        S = getSecretKey(T);
        T2 = getRandomMatrix(m, 1, tBound);
        S2 = getSecretKey(T2);
        G = random_g(m);
        x1 = random_plaintext(m, o.plain_bound);
        x2 = random_plaintext(m, o.plain_bound);
    }

    void need_enc() {
        if (have_enc) return;
        mat_ZZ I;
        ident(I, m);
        M_enc = keySwitchMatrix(I, T);
        c1 = keySwitch(M_enc, w * x1);
        c2 = keySwitch(M_enc, w * x2);
        have_enc = true;
    }
    void need_switch() {
        if (have_switch) return;
        M_switch = keySwitchMatrix(S, T2);
        have_switch = true;
    }
    void need_linear() {
        if (have_linear) return;
        M_linear = linearTransformClient(G, S, T);
        have_linear = true;
    }
    void need_dot() {
        if (have_dot) return;
        double start = now();
        M_dot = innerProdClient(T);
        dot_setup_seconds = now() - start;
        have_dot = true;
    }
};

bool equal_in_every_slot(const vec_ZZ& got, const ZZ& expected) {
    if (got.length() == 0) return false;
    for (long i = 0; i < got.length(); ++i)
        if (got[i] != expected) return false;
    return true;
}

Result run_operation(const std::string& op, Fixture& f) {
    Result r;
    r.operation = op;
    const Options& o = f.o;
    if (op == "encrypt") {
        f.need_enc();
        vec_ZZ wx = w * f.x1;
        vec_ZZ out;
        r.timing = time_calls([&] { out = keySwitch(f.M_enc, wx); }, o);
        r.verified = decrypt(f.S, out) == f.x1;
        r.key_rows = f.M_enc.NumRows();
        r.key_cols = f.M_enc.NumCols();
        r.key_bytes = magnitude_bytes(f.M_enc);
        r.ciphertext_entries = out.length();
        r.ciphertext_bytes = magnitude_bytes(out);
    } else if (op == "decrypt") {
        f.need_enc();
        vec_ZZ out;
        r.timing = time_calls([&] { out = decrypt(f.S, f.c1); }, o);
        r.verified = out == f.x1;
        r.ciphertext_entries = f.c1.length();
        r.ciphertext_bytes = magnitude_bytes(f.c1);
    } else if (op == "key_switch") {
        f.need_enc();
        f.need_switch();
        vec_ZZ out;
        r.timing = time_calls([&] { out = keySwitch(f.M_switch, f.c1); }, o);
        r.verified = decrypt(f.S2, out) == f.x1;
        r.key_rows = f.M_switch.NumRows();
        r.key_cols = f.M_switch.NumCols();
        r.key_bytes = magnitude_bytes(f.M_switch);
        r.ciphertext_entries = out.length();
        r.ciphertext_bytes = magnitude_bytes(out);
    } else if (op == "linear_transform") {
        f.need_enc();
        f.need_linear();
        vec_ZZ out;
        r.timing = time_calls([&] { out = linearTransform(f.M_linear, f.c1); }, o);
        r.verified = decrypt(f.S, out) == f.G * f.x1;
        r.key_rows = f.M_linear.NumRows();
        r.key_cols = f.M_linear.NumCols();
        r.key_bytes = magnitude_bytes(f.M_linear);
        r.ciphertext_entries = out.length();
        r.ciphertext_bytes = magnitude_bytes(out);
    } else if (op == "dot_keygen") {
        mat_ZZ key;
        r.timing = time_calls([&] { key = innerProdClient(f.T); }, o);
        // keep the last key for a following "dot": building it again can take half a minute
        f.M_dot = key;
        f.have_dot = true;
        f.need_enc();
        ZZ expected;
        InnerProduct(expected, f.x1, f.x2);
        r.verified = equal_in_every_slot(decrypt(f.S, innerProd(f.c1, f.c2, f.M_dot)), expected);
        r.key_rows = key.NumRows();
        r.key_cols = key.NumCols();
        r.key_bytes = magnitude_bytes(key);
    } else if (op == "dot") {
        f.need_enc();
        f.need_dot();
        r.setup_seconds = f.dot_setup_seconds;
        vec_ZZ out;
        r.timing = time_calls([&] { out = innerProd(f.c1, f.c2, f.M_dot); }, o);
        ZZ expected;
        InnerProduct(expected, f.x1, f.x2);
        r.verified = equal_in_every_slot(decrypt(f.S, out), expected);
        r.key_rows = f.M_dot.NumRows();
        r.key_cols = f.M_dot.NumCols();
        r.key_bytes = magnitude_bytes(f.M_dot);
        r.ciphertext_entries = out.length();
        r.ciphertext_bytes = magnitude_bytes(out);
    } else {
        r.detail = "unknown operation";
    }
    return r;
}

std::string json_string(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (static_cast<unsigned char>(c) < 0x20) {
            char buffer[8];
            std::snprintf(buffer, sizeof buffer, "\\u%04x", c);
            out += buffer;
        } else {
            out += c;
        }
    }
    return out + "\"";
}

void print_result(const Result& r, long m, bool last) {
    std::printf("    {\"operation\": %s, \"m\": %ld, ", json_string(r.operation).c_str(), m);
    std::printf("\"verified\": %s, ", r.verified ? "true" : "false");
    if (!r.detail.empty()) std::printf("\"detail\": %s, ", json_string(r.detail).c_str());
    std::printf("\"calls_per_round\": %ld, \"warmed_up\": %s, ", r.timing.calls_per_round,
                r.timing.warmed_up ? "true" : "false");
    std::printf("\"key_rows\": %ld, \"key_cols\": %ld, \"key_bytes\": %.0f, ", r.key_rows,
                r.key_cols, r.key_bytes);
    std::printf("\"ciphertext_entries\": %ld, \"ciphertext_bytes\": %.0f, ", r.ciphertext_entries,
                r.ciphertext_bytes);
    std::printf("\"setup_seconds\": %.9e, \"seconds\": [", r.setup_seconds);
    for (size_t i = 0; i < r.timing.per_call.size(); ++i)
        std::printf("%s%.9e", i ? ", " : "", r.timing.per_call[i]);
    std::printf("]}%s\n", last ? "" : ",");
}

[[noreturn]] void usage(const char* message) {
    std::fprintf(stderr,
                 "vhe_driver: %s\nusage: vhe_driver --m M --ops op[,op...] [--min-time S] "
                 "[--max-time S] [--min-rounds N] [--max-rounds N] [--slow S] [--seed N]\n"
                 "operations: encrypt decrypt key_switch linear_transform dot_keygen dot\n",
                 message);
    std::exit(2);
}

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string flag = argv[i];
        if (i + 1 >= argc) usage(("missing value after " + flag).c_str());
        std::string value = argv[++i];
        char* end = nullptr;
        if (flag == "--m") {
            o.m = std::strtol(value.c_str(), &end, 10);
        } else if (flag == "--ops") {
            size_t start = 0;
            while (start <= value.size()) {
                size_t comma = value.find(',', start);
                if (comma == std::string::npos) comma = value.size();
                if (comma > start) o.ops.push_back(value.substr(start, comma - start));
                start = comma + 1;
            }
            end = nullptr;
        } else if (flag == "--min-time") {
            o.min_time = std::strtod(value.c_str(), &end);
        } else if (flag == "--max-time") {
            o.max_time = std::strtod(value.c_str(), &end);
        } else if (flag == "--min-rounds") {
            o.min_rounds = std::strtol(value.c_str(), &end, 10);
        } else if (flag == "--max-rounds") {
            o.max_rounds = std::strtol(value.c_str(), &end, 10);
        } else if (flag == "--slow") {
            o.slow = std::strtod(value.c_str(), &end);
        } else if (flag == "--seed") {
            o.seed = std::strtol(value.c_str(), &end, 10);
        } else {
            usage(("unknown option " + flag).c_str());
        }
        if (end != nullptr && *end != '\0') usage(("bad value for " + flag).c_str());
    }
    if (o.m < 1) usage("--m must be at least 1");
    if (o.ops.empty()) usage("--ops is required");
    if (o.min_rounds < 1 || o.max_rounds < o.min_rounds) usage("bad --min-rounds/--max-rounds");
    static const char* known[] = {"encrypt",          "decrypt",    "key_switch",
                                  "linear_transform", "dot_keygen", "dot"};
    for (const std::string& op : o.ops) {
        if (std::find(std::begin(known), std::end(known), op) == std::end(known))
            usage(("unknown operation " + op).c_str());
    }
    return o;
}

}  // namespace henn_driver

int main(int argc, char** argv) {
    using namespace henn_driver;
    Options o = parse(argc, argv);
    SetSeed(ZZ(o.seed));
    Fixture fixture(o, o.m);
    std::vector<Result> results;
    for (const std::string& op : o.ops) results.push_back(run_operation(op, fixture));
    struct rusage usage_now;
    getrusage(RUSAGE_SELF, &usage_now);
    std::printf("{\n  \"format\": \"hennframework-vhe-driver\",\n  \"version\": 1,\n");
    std::printf("  \"ntl_version\": %s,\n", json_string(NTL_VERSION).c_str());
    std::printf(
        "  \"parameters\": {\"w_bits\": 40, \"l\": %d, \"a_bound\": %ld, \"t_bound\": %ld, "
        "\"e_bound\": %ld, \"k\": 1, \"plaintext_bound\": %ld, \"seed\": %ld},\n",
        l, conv<long>(aBound), conv<long>(tBound), conv<long>(eBound), o.plain_bound, o.seed);
    std::printf("  \"m\": %ld,\n", o.m);
    std::printf("  \"peak_rss_bytes\": %.0f,\n", static_cast<double>(usage_now.ru_maxrss) * 1024.0);
    std::printf("  \"results\": [\n");
    for (size_t i = 0; i < results.size(); ++i)
        print_result(results[i], o.m, i + 1 == results.size());
    std::printf("  ]\n}\n");
    bool all_verified = true;
    for (const Result& r : results) all_verified = all_verified && r.verified;
    return all_verified ? 0 : 3;
}
