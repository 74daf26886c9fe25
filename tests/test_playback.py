"""Playback figures: frames walk through the steps, and the last frame is the whole trace."""
import numpy as np
import pytest

from skimviz.viz import playback


def test_frame_steps_end_at_T_and_are_capped():
    assert playback.frame_steps(784, 49)[-1] == 784
    assert len(playback.frame_steps(784, 49)) == 49
    assert playback.frame_steps(5, 49) == [1, 2, 3, 4, 5]
    with pytest.raises(ValueError):
        playback.frame_steps(0, 10)


def _digit_trace(side=7):
    T = side * side
    update = (np.arange(T) % 3 == 0).astype(float)
    u_tilde = np.where(update > 0, 1.0, 0.3)
    image = np.zeros((28, 28))
    image[8:20, 12:16] = 255
    return image, update, u_tilde


def test_pixel_playback_frames_reveal_the_scan_in_order():
    image, update, u = _digit_trace(7)
    fig = playback.pixel_playback(image, update, u, side=7, max_frames=7)
    names = [f.name for f in fig.frames]
    assert names == [str(s) for s in playback.frame_steps(49, 7)]
    first = np.array(fig.frames[0].data[0].z)              # 0 unseen, 1 skipped, 2 used
    assert (first.reshape(-1)[7:] == 0).all()               # only the first 7 pixels reached
    assert first.reshape(-1)[0] == 2 and first.reshape(-1)[1] == 1
    last = np.array(fig.frames[-1].data[0].z).reshape(-1)
    np.testing.assert_array_equal(last, 1 + update)
    assert fig.frames[0].data[0].zmax == 2                  # the colour scale spans the codes
    fired = fig.frames[-1].data[3]
    assert list(fired.x) == list(np.flatnonzero(update) + 1)
    assert list(fig.layout.sliders[0].steps[-1].args[0]) == ["49"]


def test_pixel_playback_rejects_bad_traces():
    image, update, u = _digit_trace(7)
    with pytest.raises(ValueError):
        playback.pixel_playback(image, update[:-1], u[:-1], side=7)
    with pytest.raises(ValueError):
        playback.pixel_playback(image, update * 0.5, u, side=7)


def test_signal_playback_marks_used_samples():
    vals = np.sin(np.linspace(0, 6, 40))
    update = (np.arange(40) % 5 == 0).astype(float)
    fig = playback.signal_playback(vals, update, np.linspace(0, 1, 40), max_frames=4)
    assert [f.name for f in fig.frames] == ["10", "20", "30", "40"]
    assert list(fig.frames[0].data[1].x) == [1, 6]          # the used samples within the first 10
    assert len(fig.frames[-1].data[1].x) == 8


def test_token_playback_shows_words_up_to_t_with_their_decision():
    tokens = ["the", "film", "drags", "badly"]
    fig = playback.token_playback(tokens, [1, 1, 0, 0], [0.9, 0.85, 0.2, 0.1], theta=0.5)
    assert [f.name for f in fig.frames] == ["1", "2", "3", "4"]
    assert list(fig.frames[1].data[0].text) == ["the", "film", "", ""]
    colours = fig.frames[-1].data[0].textfont.color
    assert colours[0] == colours[1] != colours[2] == colours[3]
    np.testing.assert_allclose(fig.frames[2].data[1].y, [0.9, 0.85, 0.2], rtol=1e-6)
    with pytest.raises(ValueError):
        playback.token_playback(tokens, [1, 0], [0.1, 0.2])


def test_a_digit_playback_is_a_small_download():
    """Every θ move redraws it for every student: its JSON stays well under a megabyte (it was
    1.5 MB as float64 frames)."""
    rng = np.random.default_rng(0)
    fig = playback.pixel_playback(rng.random((28, 28)) * 255, (rng.random(784) < 0.4) * 1.0,
                                  rng.random(784))
    assert len(fig.to_json()) < 600_000


def test_a_token_playback_is_a_figure_plotly_accepts():
    """token_playback writes its figure dict itself and skips Plotly's validation (every review
    is a new figure): Plotly's validation accepts it all the same, θ is drawn where it is, and
    presentation mode can still enlarge it."""
    import plotly.graph_objects as go

    from skimviz.viz import common
    tokens = "a warm and funny film with a thin plot , sadly".split()
    fig = playback.token_playback(tokens, [0, 1, 1, 0, 0, 1, 1, 0, 0, 0, 1],
                                  np.linspace(0, 1, 11), theta=0.4)
    checked = go.Figure(fig.to_dict())          # raises on any property Plotly does not know
    assert len(checked.frames) == len(tokens) and checked.layout.shapes[0].y0 == 0.4
    top, bottom = checked.layout.yaxis.domain, checked.layout.yaxis2.domain
    assert bottom[0] == 0 and top[1] == 1 and top[0] - bottom[1] == pytest.approx(0.2)
    assert [t.name for t in checked.data[2:]] == ["read (big LSTM)", "skimmed (small LSTM)"]
    h = fig.layout.height
    assert common.enlarge(fig).layout.height > h
