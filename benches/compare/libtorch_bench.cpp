// LibTorch (C++) side of benches/compare: the workloads of torch_bench.py
// without Python in the loop (sgemm and the MLP shapes, element-wise add/mul
// and broadcast add, sums, exp/sigmoid/tanh/gelu/softmax as multiples of a copy, the
// 784-256-128-10 Adam training step), each checked against a float64
// reference before timing.
//
// One thread is timed with the thread's CPU time, more threads with wall time;
// best of several repetitions (the harness's rules). The harness compiles this
// file against the headers and libraries of the installed torch wheel and runs
//   libtorch_bench OUT.json THREADS(1,2) QUICK(0|1)
// A wrong result exits with status 3 and a message naming the case.
#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

namespace {

bool quick = false;
int reps_override = 0;  // repetitions per figure when > 0

double now(int threads) {
  timespec ts;
  clock_gettime(threads == 1 ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

double timed(int threads, long iters, const std::function<void()>& f) {
  double t0 = now(threads);
  for (long i = 0; i < iters; ++i) f();
  return now(threads) - t0;
}

// Best seconds per call: warm up, calibrate to the repetition length, then the
// best of the repetitions.
double best(int threads, const std::function<void()>& f) {
  double rep = quick ? 0.01 : 0.1;
  int reps = reps_override > 0 ? reps_override : (quick ? 3 : 7);
  f();
  long n = 1, iters = 1;
  for (;;) {
    double t = timed(threads, n, f);
    if (t >= rep * 0.5 || n >= (1L << 24)) {
      iters = std::max(1L, (long)std::ceil(rep / std::max(t / n, 1e-9)));
      break;
    }
    n *= 4;
  }
  double b = 1e300;
  for (int r = 0; r < reps; ++r) b = std::min(b, timed(threads, iters, f) / iters);
  return b;
}

// Fails the run unless |got - want| <= abs + rel * scale everywhere (scale
// defaults to |want|).
void check(const std::string& what, const torch::Tensor& got, const torch::Tensor& want,
           double rel, double abs, torch::Tensor scale = {}) {
  auto g = got.detach().to(torch::kFloat64).flatten();
  auto w = want.detach().to(torch::kFloat64).flatten();
  auto s = scale.defined() ? scale.to(torch::kFloat64).flatten() : w.abs();
  auto excess = (g - w).abs() / (abs + rel * s);
  auto bad = torch::nan_to_num(excess, INFINITY);
  if (bad.max().item<double>() > 1.0) {
    int64_t i = bad.argmax().item<int64_t>();
    std::fprintf(stderr, "WRONG RESULT: %s (libtorch): element %lld is %g, the float64 reference is %g\n",
                 what.c_str(), (long long)i, g[i].item<double>(), w[i].item<double>());
    std::exit(3);
  }
}

struct Record {
  std::string group, cas;
  int threads;
  double secs, value;
  std::string unit;
  double flops;  // < 0: none
};

std::vector<Record> out;

void record(const std::string& group, const std::string& cas, int threads, double secs,
            double value, const std::string& unit, double flops = -1) {
  out.push_back({group, cas, threads, secs, value, unit, flops});
}

std::string size_label(int64_t n) {
  int k = (int)std::lround(std::log10((double)n));
  int64_t p = 1;
  for (int i = 0; i < k; ++i) p *= 10;
  return p == n ? "1e" + std::to_string(k) : std::to_string(n);
}

torch::Tensor uniform(std::vector<int64_t> shape, double scale = 1.0) {
  return (torch::rand(shape) * 2 - 1) * scale;
}

void matmuls(int threads) {
  std::vector<int64_t> sizes = quick ? std::vector<int64_t>{64, 256, 512}
                                     : std::vector<int64_t>{64, 128, 256, 512, 1024, 2048};
  struct Shape {
    std::string group;
    int64_t m, n, k;
    bool bt;
  };
  std::vector<Shape> shapes;
  for (auto n : sizes) shapes.push_back({"sgemm", n, n, n, false});
  shapes.push_back({"mlp-shapes", 64, 256, 784, false});
  shapes.push_back({"mlp-shapes", 64, 256, 784, true});
  shapes.push_back({"mlp-shapes", 256, 1024, 1024, false});
  for (auto& s : shapes) {
    auto a = uniform({s.m, s.k});
    auto w = s.bt ? uniform({s.n, s.k}) : uniform({s.k, s.n});
    auto b = s.bt ? w.t() : w;
    std::string cas;
    if (s.group == "sgemm") {
      cas = "N=" + std::to_string(s.n);
    } else {
      std::ostringstream c;
      if (s.bt)
        c << "[" << s.m << "," << s.k << "]x[" << s.n << "," << s.k << "]^T";
      else
        c << "[" << s.m << "," << s.k << "]x[" << s.k << "," << s.n << "]";
      cas = c.str();
    }
    auto ad = a.to(torch::kFloat64), bd = b.to(torch::kFloat64);
    check(s.group + " " + cas, torch::mm(a, b), torch::mm(ad, bd), 1e-5 * (1 + s.k / 256.0), 1e-30,
          torch::mm(ad.abs(), bd.abs()));
    torch::Tensor c;
    double secs = best(threads, [&] { c = torch::mm(a, b); });
    double flops = 2.0 * s.m * s.n * s.k;
    record(s.group, cas, threads, secs, flops / secs * 1e-9, "GFLOP/s", flops);
  }
}

void elementwise(int threads) {
  std::vector<int64_t> sizes = quick ? std::vector<int64_t>{1000, 100000, 1000000}
                                     : std::vector<int64_t>{1000, 10000, 100000, 1000000, 10000000};
  struct Case {
    std::string name;
    std::vector<int64_t> sa, sb;
    bool mul;
  };
  std::vector<Case> cases;
  for (auto n : sizes) {
    cases.push_back({"add " + size_label(n), {n}, {n}, false});
    cases.push_back({"mul " + size_label(n), {n}, {n}, true});
  }
  cases.push_back({"broadcast add [1024,1024]+[1024]", {1024, 1024}, {1024}, false});
  for (auto& c : cases) {
    auto a = uniform(c.sa), b = uniform(c.sb);
    auto op = [&](const torch::Tensor& x, const torch::Tensor& y) {
      return c.mul ? torch::mul(x, y) : torch::add(x, y);
    };
    check(c.name, op(a, b), op(a.to(torch::kFloat64), b.to(torch::kFloat64)), 1e-7, 1e-30);
    torch::Tensor r;
    double secs = best(threads, [&] { r = op(a, b); });
    record("elementwise", c.name, threads, secs, secs * 1e6, "us");
  }
}

void reductions(int threads) {
  struct Case {
    std::string name;
    std::vector<int64_t> shape;
    int64_t dim;  // -1: every element
  };
  std::vector<Case> cases = {{"sum 1e5", {100000}, -1},
                             {"sum 1e6", {1000000}, -1},
                             {"sum rows [1024,1024]", {1024, 1024}, 1},
                             {"sum columns [1024,1024]", {1024, 1024}, 0}};
  for (auto& c : cases) {
    auto x = uniform(c.shape);
    auto f = [&](const torch::Tensor& t) { return c.dim < 0 ? t.sum() : t.sum(c.dim); };
    auto xd = x.to(torch::kFloat64);
    check(c.name, f(x), f(xd), 1e-6, 1e-30, f(xd.abs()));
    torch::Tensor r;
    double secs = best(threads, [&] { r = f(x); });
    record("reduction", c.name, threads, secs, secs * 1e6, "us");
  }
}

void transcendental(int threads) {
  auto x = uniform({1000000}, 4.0);
  auto xs = uniform({1024, 1024}, 4.0);
  torch::Tensor r;
  double copy1 = best(threads, [&] { r = x.clone(); });
  double copy2 = best(threads, [&] { r = xs.clone(); });
  record("copy", "copy 1e6", threads, copy1, copy1 * 1e6, "us");
  record("copy", "copy [1024,1024]", threads, copy2, copy2 * 1e6, "us");
  using F = torch::Tensor (*)(const torch::Tensor&);
  std::vector<std::pair<std::string, F>> fs = {
      {"exp 1e6", [](const torch::Tensor& t) { return torch::exp(t); }},
      {"sigmoid 1e6", [](const torch::Tensor& t) { return torch::sigmoid(t); }},
      {"tanh 1e6", [](const torch::Tensor& t) { return torch::tanh(t); }},
      {"gelu 1e6", [](const torch::Tensor& t) { return torch::gelu(t); }},
  };
  for (auto& [name, f] : fs) {
    // LibTorch's float32 exact GELU, 0.5 x (1 + erf(x / sqrt 2)), cancels in
    // the negative tail: checked to 2e-6 absolute, the others to 1e-6.
    check(name, f(x), f(x.to(torch::kFloat64)), 1e-5, name == "gelu 1e6" ? 2e-6 : 1e-6);
    double secs = best(threads, [&] { r = f(x); });
    record("transcendental", name, threads, secs, secs / copy1, "x copy");
  }
  check("softmax", torch::softmax(xs, -1), torch::softmax(xs.to(torch::kFloat64), -1), 1e-5, 1e-9);
  double secs = best(threads, [&] { r = torch::softmax(xs, -1); });
  record("transcendental", "softmax [1024,1024]", threads, secs, secs / copy2, "x copy");
}

torch::nn::Sequential mlp() {
  return torch::nn::Sequential(torch::nn::Linear(784, 256), torch::nn::ReLU(),
                               torch::nn::Linear(256, 128), torch::nn::ReLU(),
                               torch::nn::Linear(128, 10));
}

double step_flops(int64_t b) {
  double fwd = 2.0 * b * (784 * 256 + 256 * 128 + 128 * 10);
  return 2 * fwd + 2.0 * b * (256 * 128 + 128 * 10);
}

void train(int threads) {
  for (int64_t batch : {4, 64, 256}) {
    std::vector<std::pair<torch::Tensor, torch::Tensor>> data;
    for (int i = 0; i < (quick ? 4 : 32); ++i)
      data.push_back({uniform({batch, 784}), torch::randint(0, 10, {batch}, torch::kLong)});
    auto model = mlp();
    auto ref = mlp();
    ref->to(torch::kFloat64);
    {
      torch::NoGradGuard g;
      auto p = model->parameters();
      auto q = ref->parameters();
      for (size_t i = 0; i < p.size(); ++i) q[i].copy_(p[i]);
    }
    torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(1e-3));
    torch::optim::Adam opt_ref(ref->parameters(), torch::optim::AdamOptions(1e-3));
    auto& [x, y] = data[0];
    auto xd = x.to(torch::kFloat64);
    std::string name = "mlp batch " + std::to_string(batch);
    // One checked step from identical weights.
    opt.zero_grad();
    auto loss = torch::nn::functional::cross_entropy(model->forward(x), y);
    loss.backward();
    opt_ref.zero_grad();
    auto loss_ref = torch::nn::functional::cross_entropy(ref->forward(xd), y);
    loss_ref.backward();
    check(name + " loss", loss, loss_ref, 1e-5, 1e-6);
    auto p = model->parameters();
    auto q = ref->parameters();
    for (size_t i = 0; i < p.size(); ++i)
      check(name + " gradient", p[i].grad(), q[i].grad(), 1e-4, 1e-9,
            q[i].grad().abs().max().expand_as(q[i].grad()));
    opt.step();
    opt_ref.step();
    {
      torch::NoGradGuard g;
      check(name + " loss after the update",
            torch::nn::functional::cross_entropy(model->forward(x), y),
            torch::nn::functional::cross_entropy(ref->forward(xd), y), 1e-4, 1e-6);
    }
    size_t i = 0;
    double secs = best(threads, [&] {
      ++i;
      auto& [xb, yb] = data[i % data.size()];
      opt.zero_grad();
      torch::nn::functional::cross_entropy(model->forward(xb), yb).backward();
      opt.step();
    });
    record("mlp-train", "batch " + std::to_string(batch), threads, secs, 1.0 / secs, "steps/s",
           step_flops(batch));
  }
}

std::string quote(const std::string& s) {
  std::string q = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') q += '\\';
    q += c;
  }
  return q + "\"";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4 && argc != 5) {
    std::fprintf(stderr, "usage: libtorch_bench OUT.json THREADS(1,2,...) QUICK(0|1) [REPS]\n");
    return 2;
  }
  quick = std::string(argv[3]) == "1";
  if (argc == 5) reps_override = std::stoi(argv[4]);
  torch::manual_seed(0);
  std::vector<int> threads;
  std::stringstream ts(argv[2]);
  for (std::string t; std::getline(ts, t, ',');) threads.push_back(std::stoi(t));
  for (int t : threads) {
    at::set_num_threads(t);
    std::fprintf(stderr, "== libtorch on %d thread(s)\n", t);
    matmuls(t);
    elementwise(t);
    reductions(t);
    transcendental(t);
    train(t);
  }
  FILE* f = std::fopen(argv[1], "w");
  if (!f) {
    std::perror(argv[1]);
    return 2;
  }
  std::fprintf(f, "{\"torch\": %s, \"records\": [\n", quote(TORCH_VERSION).c_str());
  for (size_t i = 0; i < out.size(); ++i) {
    auto& r = out[i];
    std::fprintf(f,
                 " {\"group\": %s, \"case\": %s, \"threads\": %d, \"lib\": \"libtorch\", "
                 "\"secs\": %.9g, \"value\": %.9g, \"unit\": %s, \"flops\": ",
                 quote(r.group).c_str(), quote(r.cas).c_str(), r.threads, r.secs, r.value,
                 quote(r.unit).c_str());
    if (r.flops < 0)
      std::fprintf(f, "null}");
    else
      std::fprintf(f, "%.9g}", r.flops);
    std::fprintf(f, i + 1 < out.size() ? ",\n" : "\n");
  }
  std::fprintf(f, "]}\n");
  return std::fclose(f) == 0 ? 0 : 2;
}
