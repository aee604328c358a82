// Helpers for the nn/ layer tests: one case of tests/fixtures/nn_layers.safetensors (written by
// tests/golden/gen_nn_layers.py) loaded into a module under PyTorch's state-dict names, run
// forward and backward, and compared with PyTorch's output, input gradients and parameter
// gradients.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "autograd/engine.h"  // autograd::backward
#include "nn/module.h"
#include "support/compare.h"
#include "support/fixtures.h"
#include "tensor/ops.h"

namespace cxr::test {

inline const std::map<std::string, Tensor>& nn_fixture() {
  static const std::map<std::string, Tensor> f = load_fixture("nn_layers.safetensors");
  return f;
}

// "<case>.<key>" of the fixture.
inline Tensor case_tensor(const std::string& c, const std::string& key) {
  return fixture_tensor(nn_fixture(), c + "." + key);
}
inline bool case_has(const std::string& c, const std::string& key) {
  return nn_fixture().count(c + "." + key) > 0;
}

// The case's PyTorch state dict (keys "<case>.param.<name>" with the prefix removed).
inline nn::StateDict case_state_dict(const std::string& c) {
  nn::StateDict out;
  const std::string prefix = c + ".param.";
  for (const auto& [key, t] : nn_fixture())
    if (key.compare(0, prefix.size(), prefix) == 0) out[key.substr(prefix.size())] = t;
  return out;
}

struct Tolerance {
  double rtol = 1e-4, atol = 1e-5;
};

// Loads the case's state dict (strict), then runs `call` on the named inputs (those PyTorch
// differentiated require grad; masks and indices pass as they are), backpropagates the stored
// gy and compares the output ("<prefix>out"), the gradient of every floating input
// ("<prefix>grad_<input>") and of every parameter ("<prefix>grad.<name>") with PyTorch's.
// `prefix` is "" for the train-mode run and "eval." for the eval-mode one.
inline void expect_matches_torch(nn::Module& m, const std::string& c,
                                 const std::vector<std::string>& inputs,
                                 const std::function<Tensor(const std::vector<Tensor>&)>& call,
                                 const std::string& prefix = "", Tolerance tol = {},
                                 bool load = true) {
  SCOPED_TRACE("case " + c + (prefix.empty() ? "" : " (" + prefix + ")"));
  if (load) {
    nn::LoadReport report = m.load_state_dict(case_state_dict(c));
    EXPECT_TRUE(report.ok()) << report.str();
  }
  std::vector<Tensor> leaves;
  for (const auto& name : inputs) {
    Tensor t = raw::clone(case_tensor(c, name));
    if (case_has(c, prefix + "grad_" + name)) t.set_requires_grad(true);
    leaves.push_back(t);
  }
  m.zero_grad();
  Tensor out = call(leaves);
  EXPECT_ALL_CLOSE(out, case_tensor(c, prefix + "out"), tol.rtol, tol.atol);
  autograd::backward({out}, {case_tensor(c, "gy")});
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!leaves[i].requires_grad()) continue;
    SCOPED_TRACE("grad of input " + inputs[i]);
    ASSERT_TRUE(leaves[i].grad().defined());
    EXPECT_ALL_CLOSE(leaves[i].grad(), case_tensor(c, prefix + "grad_" + inputs[i]), tol.rtol,
                     tol.atol);
  }
  int64_t compared = 0;
  for (const auto& [name, p] : m.named_parameters()) {
    SCOPED_TRACE("grad of parameter " + name);
    if (!case_has(c, prefix + "grad." + name)) continue;
    ASSERT_TRUE(p.grad().defined());
    EXPECT_ALL_CLOSE(p.grad(), case_tensor(c, prefix + "grad." + name), tol.rtol, tol.atol);
    ++compared;
  }
  EXPECT_EQ(compared, int64_t(m.named_parameters().size()))
      << "every parameter should have a PyTorch gradient to compare with";
}

// Single-input form: forward(x).
inline void expect_matches_torch(nn::Module& m, const std::string& c,
                                 const std::string& prefix = "", Tolerance tol = {},
                                 bool load = true) {
  expect_matches_torch(
      m, c, {"x"}, [&m](const std::vector<Tensor>& in) { return m.forward(in[0]); }, prefix, tol,
      load);
}

}  // namespace cxr::test
