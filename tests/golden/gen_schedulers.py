"""Writes tests/fixtures/schedulers.safetensors: golden values from diffusers' schedulers
(diffusers 0.42: DDPMScheduler, DDIMScheduler, PNDMScheduler, EulerAncestralDiscreteScheduler) for
tests/models/test_schedulers.cpp. Run by hand:
    python3 tests/golden/gen_schedulers.py

Keys:
    schedule.<beta_schedule>.betas / .alphas_cumprod   float32 [1000]; scaled_linear (SD:
                                   0.00085..0.012), linear (1e-4..0.02), squaredcos_cap_v2
    timesteps.counts               int64: the step counts n used below
    timesteps.<sched>.<spacing>.<n> float64: scheduler.timesteps after set_timesteps(n), SD's config
                                   (scaled_linear, steps_offset 1, set_alpha_to_one false,
                                   skip_prk_steps true) with timestep_spacing <spacing>
    sigmas.<spacing>.<n>           float32: EulerAncestral's sigmas for the same configs
    init_noise_sigma.<spacing>.<n> float64 [1]: EulerAncestral's init_noise_sigma
    noising.x0 / .noise            float32 [4, 2, 3, 3]
    noising.timesteps              int64 [4]
    noising.add_noise / .velocity  DDPMScheduler(SD config).add_noise / get_velocity
    guidance.uncond / .cond        float32 [2, 4, 3, 3]: unconditional / conditional predictions
    guidance.guided                uncond + 7.5 * (cond - uncond), as the SD pipeline
    guidance.rescaled              diffusers' rescale_noise_cfg(guided, cond, 0.7)
    case.<name>.config             uint8: the scheduler's config JSON as save_config writes it
                                   (to_json_string, with _class_name)
    case.<name>.steps              int64 [1]: n for set_timesteps
    case.<name>.eta                float64 [1]: DDIM's eta (0 for the others)
    case.<name>.timesteps          float64 [K]: the timesteps stepped (K = all of them)
    case.<name>.sample             float32 [2, 4, 4, 4]: initial latents (randn * init_noise_sigma)
    case.<name>.model_output       float32 [K, 2, 4, 4, 4]: the model output given at step k
    case.<name>.noise              float32 [K, 2, 4, 4, 4]: the noise the step draws (DDPM at t > 0,
                                   DDIM with eta > 0, Euler ancestral), reproduced from the seeded
                                   torch generator the step is given
    case.<name>.scaled_input       float32 [K, ...]: scale_model_input(sample_k, t_k)
    case.<name>.prev_sample        float32 [K, ...]: step k's prev_sample (sample_{k+1})
Each case runs the whole loop, feeding the scheduler its own previous output.
"""
import pathlib

import diffusers
import numpy as np
import torch
from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion import rescale_noise_cfg
from safetensors.torch import save_file

OUT = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "schedulers.safetensors"

# SD v1.x scheduler/scheduler_config.json (spec/diffusion.md §5.1).
SD_CONFIG = {
    "_class_name": "PNDMScheduler",
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "trained_betas": None,
    "clip_sample": False,
}

CLASSES = {
    "ddpm": diffusers.DDPMScheduler,
    "ddim": diffusers.DDIMScheduler,
    "pndm": diffusers.PNDMScheduler,
    "euler_ancestral": diffusers.EulerAncestralDiscreteScheduler,
}
SPACINGS = ["leading", "trailing", "linspace"]
COUNTS = [1, 3, 7, 10, 16, 20, 50, 75, 1000]
SHAPE = (2, 4, 4, 4)


def make(name, **overrides):
    return CLASSES[name].from_config({**SD_CONFIG, **overrides})


def schedules(out):
    for kind, kwargs in [
        ("scaled_linear", dict(beta_start=0.00085, beta_end=0.012)),
        ("linear", dict(beta_start=0.0001, beta_end=0.02)),
        ("squaredcos_cap_v2", {}),
    ]:
        s = diffusers.DDPMScheduler(beta_schedule=kind, **kwargs)
        out[f"schedule.{kind}.betas"] = s.betas.clone()
        out[f"schedule.{kind}.alphas_cumprod"] = s.alphas_cumprod.clone()


def timesteps(out):
    out["timesteps.counts"] = torch.tensor(COUNTS, dtype=torch.int64)
    for name in CLASSES:
        for spacing in SPACINGS:
            for n in COUNTS:
                s = make(name, timestep_spacing=spacing)
                s.set_timesteps(n)
                out[f"timesteps.{name}.{spacing}.{n}"] = s.timesteps.to(torch.float64)
                if name == "euler_ancestral":
                    out[f"sigmas.{spacing}.{n}"] = s.sigmas.clone()
                    out[f"init_noise_sigma.{spacing}.{n}"] = torch.tensor(
                        [float(s.init_noise_sigma)], dtype=torch.float64)


def noising(out):
    g = torch.Generator().manual_seed(7)
    x0 = torch.randn(4, 2, 3, 3, generator=g)
    noise = torch.randn(4, 2, 3, 3, generator=g)
    t = torch.tensor([0, 1, 500, 999], dtype=torch.int64)
    s = make("ddpm")
    out["noising.x0"], out["noising.noise"], out["noising.timesteps"] = x0, noise, t
    out["noising.add_noise"] = s.add_noise(x0, noise, t)
    out["noising.velocity"] = s.get_velocity(x0, noise, t)


def guidance(out):
    g = torch.Generator().manual_seed(8)
    uncond = torch.randn(2, 4, 3, 3, generator=g)
    cond = torch.randn(2, 4, 3, 3, generator=g) * 2
    guided = uncond + 7.5 * (cond - uncond)
    out["guidance.uncond"], out["guidance.cond"], out["guidance.guided"] = uncond, cond, guided
    out["guidance.rescaled"] = rescale_noise_cfg(guided, cond, guidance_rescale=0.7)


def case(out, label, name, steps, eta=0.0, seed=0, **overrides):
    s = make(name, **overrides)
    s.set_timesteps(steps)
    g = torch.Generator().manual_seed(1000 + seed)
    sample = torch.randn(SHAPE, generator=g) * float(s.init_noise_sigma)
    initial = sample.clone()
    outputs, noises, scaled, prevs = [], [], [], []
    for k, t in enumerate(s.timesteps):
        model_output = torch.randn(SHAPE, generator=g)
        noise_seed = 10_000 * (seed + 1) + k
        # The noise the step draws: the step's generator, seeded the same, draws exactly this.
        noise = torch.randn(SHAPE, generator=torch.Generator().manual_seed(noise_seed))
        x_in = s.scale_model_input(sample, t)
        kwargs = {"eta": eta} if name == "ddim" else {}
        if name != "pndm":
            kwargs["generator"] = torch.Generator().manual_seed(noise_seed)
        sample = s.step(model_output, t, sample, **kwargs).prev_sample
        outputs.append(model_output)
        noises.append(noise)
        scaled.append(x_in)
        prevs.append(sample)
    text = s.to_json_string().encode()  # what save_config writes
    p = f"case.{label}."
    out[p + "config"] = torch.tensor(list(text), dtype=torch.uint8)
    out[p + "steps"] = torch.tensor([steps], dtype=torch.int64)
    out[p + "eta"] = torch.tensor([eta], dtype=torch.float64)
    out[p + "timesteps"] = s.timesteps.to(torch.float64)
    out[p + "sample"] = initial
    out[p + "model_output"] = torch.stack(outputs)
    out[p + "noise"] = torch.stack(noises)
    out[p + "scaled_input"] = torch.stack(scaled)
    out[p + "prev_sample"] = torch.stack(prevs)


def cases(out):
    # SD's config as each class reads it (PNDM is SD's own), then variants.
    case(out, "ddpm_sd", "ddpm", 10, seed=1)
    case(out, "ddpm_v_clip_large", "ddpm", 10, seed=2, prediction_type="v_prediction",
         clip_sample=True, variance_type="fixed_large", timestep_spacing="trailing")
    case(out, "ddpm_sample_linspace", "ddpm", 7, seed=3, prediction_type="sample",
         timestep_spacing="linspace", beta_schedule="linear", beta_start=0.0001, beta_end=0.02)
    case(out, "ddim_sd", "ddim", 10, seed=4)
    case(out, "ddim_eta", "ddim", 10, eta=0.5, seed=5)
    case(out, "ddim_v_trailing", "ddim", 10, seed=6, prediction_type="v_prediction",
         timestep_spacing="trailing", set_alpha_to_one=True)
    case(out, "ddim_sample_clip", "ddim", 7, seed=7, prediction_type="sample", clip_sample=True,
         timestep_spacing="linspace", beta_schedule="squaredcos_cap_v2")
    case(out, "pndm_sd", "pndm", 10, seed=8)
    case(out, "pndm_v_linspace", "pndm", 20, seed=9, prediction_type="v_prediction",
         timestep_spacing="linspace")
    case(out, "euler_sd", "euler_ancestral", 10, seed=10)
    case(out, "euler_linspace", "euler_ancestral", 10, seed=11, timestep_spacing="linspace")
    case(out, "euler_v_trailing", "euler_ancestral", 10, seed=12, prediction_type="v_prediction",
         timestep_spacing="trailing")


def main():
    torch.manual_seed(0)
    out = {}
    schedules(out)
    timesteps(out)
    noising(out)
    guidance(out)
    cases(out)
    out = {k: v.contiguous() for k, v in out.items()}
    save_file(out, str(OUT))
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {len(out)} tensors)")


if __name__ == "__main__":
    main()
