"""VAE versus plain autoencoder: same data, same seed, same size; only the KL term differs."""

from ui.shell import require_app

require_app()  # before anything is drawn: see ui/shell.py

from functools import partial

import streamlit as st

from ui import cache, state, teaching, urlstate, views
from vae_core.charts import prior_layer
from vae_core.images import thumbnail_urls, to_pil_grid, to_png_bytes
from vae_core.latents import sample_prior

PAIR = {"VAE": "mnist-vae-z2", "Autoencoder": "mnist-ae-z2"}  # bundled, trained by models/make.sh
POINTS = 2000
SAMPLES = 64

st.title("VAE versus autoencoder")
st.markdown(
    "**What am I looking at?** Two models trained the same way on MNIST with a 2-D latent space; only the "
    "VAE has the KL term. Top: where the test digits land, with the same random z ~ N(0, I) as black crosses. "
    "Bottom: what those random z decode to. The sidebar's model and projection do not apply here: this page "
    "always shows these two bundled models, in their own two latent coordinates."
)
teaching.expander()

missing = [m for m in PAIR.values() if m not in state.model_ids()]
if missing:
    st.error(f"The bundled models {', '.join(missing)} are missing; rebuild them with bash models/make.sh.")
    st.stop()

url = urlstate.restore({"seed": int})
if 0 <= url.get("seed", -1) < 2**31:
    st.session_state["compare_seed"] = url["seed"]
seed_column, _ = st.columns([1, 2])  # narrow: the two scatters below start higher up the screen
seed = int(seed_column.number_input("Seed for the random z", 0, 2**31 - 1, 0, key="compare_seed"))
urlstate.publish({"seed": seed})
urlstate.link_box()
z = sample_prior(SAMPLES, 2, seed).numpy()
columns = st.columns(2)
for col, (name, model_id) in zip(columns, PAIR.items(), strict=True):
    entry = state.get_entry(model_id)
    with col:
        st.subheader(name)
        proj = views.fitted_projection(entry, "raw", POINTS, {"dims": (0, 1)})
        decoded = cache.decode_np(entry, z)
        if proj is not None:
            chart = views.scatter_chart(entry, proj, POINTS, "raw", {"dims": (0, 1)})
            st.caption(views.axis_caption("raw", {"dims": (0, 1)}))
            views.show_chart(st, chart + prior_layer(z, thumbnail_urls(decoded)))
        grid = to_pil_grid(decoded, nrow=8, scale=2)
        st.image(grid, caption=f"{name}: the decoder's images for the {SAMPLES} black crosses, z ~ N(0, I)")
        views.download(
            st, f"{name} grid (PNG)", partial(to_png_bytes, grid), f"{name.lower()}-samples.png", "image/png"
        )
        mu, _ = cache.latents(entry.fingerprint, entry)
        matched = to_pil_grid(cache.decode_np(entry, z * mu.std(0) + mu.mean(0)), nrow=8, scale=2)
        st.image(
            matched,
            caption=f"{name}: the same draws stretched to its codes' own mean and spread "
            f"(std {mu.std(0)[0]:.1f}, {mu.std(0)[1]:.1f})",
        )
        views.download(
            st,
            f"{name} stretched grid (PNG)",
            partial(to_png_bytes, matched),
            f"{name.lower()}-samples-stretched.png",
            "image/png",
        )


def _price() -> str:
    """What the KL term costs in reconstruction, from the two models' own recorded test losses."""
    recon = {name: state.get_entry(m).last_epoch.get("test_recon") for name, m in PAIR.items()}
    if None in recon.values():
        return "The price is somewhat worse reconstructions."
    return (
        f"The price is somewhat worse reconstructions: {recon['VAE']:.1f} against {recon['Autoencoder']:.1f} "
        "nats per test image for these two (the reconstruction terms; the VAE's total test loss also counts "
        "its KL term, so compare those two, not the totals, on the Train page)."
    )


st.markdown("#### Why only the VAE can be sampled from N(0, I)")
st.markdown(
    "The autoencoder is only asked to rebuild its inputs, so its codes sit wherever that is easiest, at "
    "their own scale (look at its axes) and with empty gaps between classes. Nothing ties them to N(0, I). "
    "Draws from N(0, I) all fall in a small patch near its origin, so they decode only to the classes whose "
    "codes meet there: with this autoencoder, almost no 0, 1 or 7, and few 9s. "
    "Stretched to its codes' real spread, more classes appear, but some draws "
    "land in the gaps between clusters, where the decoder was never taught what to draw: smudges and "
    "hybrids. (With only two dimensions the gaps are small; in higher dimensions almost all of the space is "
    "gaps.) The VAE's KL term pulls every "
    "image's Gaussian toward N(0, I), so its codes fill approximately the region random draws fall in, and the "
    "N(0, I) samples cover all classes. " + _price()
)
st.markdown(
    "**β** weighs that KL term. β = 0 is an autoencoder with noise; β = 1 is the VAE; β > 1 pulls harder "
    "toward N(0, I): a smoother space whose random samples more often look like digits, blurrier samples "
    "and reconstructions, and more "
    "dimensions switched off entirely (see *Latent dimensions*)."
)
