"""Samplers and spatial transforms as numbers: the paper's recipes, reproducible per (epoch, video)."""
import numpy as np
import pytest

from pipelines.data.crops import Crop, apply_crop, center_crop, three_crops, train_crop
from pipelines.data.sampling import (
    ClipSpec,
    TooShortError,
    clip_rng,
    dense_indices,
    dense_test_indices,
    plan_views,
    segment_indices,
    segment_test_indices,
)
from pipelines.presets import clip_spec


def test_dense_sampler_returns_stride_spaced_frames_inside_the_video():
    for seed in range(50):
        indices = dense_indices(300, 8, 8, np.random.default_rng(seed))
        assert np.all(np.diff(indices) == 8) and indices[0] >= 0 and indices[-1] < 300


def test_dense_sampler_centres_the_window_without_a_generator():
    assert dense_indices(100, 8, 8).tolist() == [21, 29, 37, 45, 53, 61, 69, 77]  # span 57, slack 43 -> 21


def test_dense_sampler_shrinks_the_stride_for_short_videos():
    assert dense_indices(20, 8, 8).tolist() == [2, 4, 6, 8, 10, 12, 14, 16]  # stride 20 // 8 = 2
    assert dense_indices(8, 8, 8).tolist() == list(range(8))
    with pytest.raises(TooShortError):
        dense_indices(7, 8, 8)


def test_dense_test_clips_are_uniformly_spaced_from_first_to_last_window():
    clips = dense_test_indices(100, 4, 2, clips=3)
    assert [c.tolist() for c in clips] == [[0, 2, 4, 6], [46, 48, 50, 52], [93, 95, 97, 99]]


def test_segment_sampler_takes_one_frame_per_segment():
    assert segment_indices(80, 8).tolist() == [5, 15, 25, 35, 45, 55, 65, 75]  # middles
    for seed in range(50):
        indices = segment_indices(83, 8, np.random.default_rng(seed))
        edges = (np.arange(9) * 83) // 8
        assert np.all((indices >= edges[:-1]) & (indices < edges[1:]))


def test_segment_test_clips_take_offsets_inside_each_segment():
    clips = segment_test_indices(40, 4, clips=2)
    assert [c.tolist() for c in clips] == [[2, 12, 22, 32], [7, 17, 27, 37]]


def test_random_choices_depend_only_on_seed_epoch_and_video():
    spec = ClipSpec(frames=8, stride=8, crop=112, train_short=(128, 160))
    first = plan_views(spec, "train", 300, 240, 320, clip_rng(0, 3, "a.mp4"))
    again = plan_views(spec, "train", 300, 240, 320, clip_rng(0, 3, "a.mp4"))
    assert first[0].crop == again[0].crop and np.array_equal(first[0].indices, again[0].indices)
    others = [plan_views(spec, "train", 300, 240, 320, clip_rng(0, e, "a.mp4"))[0] for e in range(4, 12)]
    assert any(v.crop != first[0].crop or not np.array_equal(v.indices, first[0].indices) for v in others)


def test_train_crop_scales_short_side_in_range_and_stays_inside():
    for seed in range(100):
        crop = train_crop(240, 320, np.random.default_rng(seed), (256, 320), 224, flip=True)
        short = crop.scale * 240
        assert 256 - 0.5 <= short <= 320 + 0.5
        assert 0 <= crop.top <= round(240 * crop.scale) - 224 and 0 <= crop.left <= round(320 * crop.scale) - 224
    flips = [train_crop(240, 320, np.random.default_rng(s), (256, 320), 224, flip=True).flip for s in range(200)]
    assert 60 < sum(flips) < 140
    assert not any(train_crop(240, 320, np.random.default_rng(s), (256, 320), 224, flip=False).flip for s in range(50))


def test_eval_crop_is_the_deterministic_centre():
    assert center_crop(240, 320, 256, 224) == Crop(256 / 240, 16, 58, (224, 224))


def test_three_crops_cover_left_centre_right_of_the_long_side():
    crops = three_crops(240, 320, 256)
    assert [c.left for c in crops] == [0, 42, 85] and all(c.top == 0 and c.size == (256, 256) for c in crops)
    portrait = three_crops(320, 240, 256)
    assert [c.top for c in portrait] == [0, 42, 85]


def test_test_mode_plans_k_clips_times_three_crops():
    spec = ClipSpec(frames=8, stride=8, test_clips=10, test_short=256)
    views = plan_views(spec, "test", 300, 240, 320)
    assert len(views) == 30 == spec.views_per_video("test")
    assert len({tuple(v.indices) for v in views}) == 10 and len({v.crop for v in views}) == 3


def test_apply_crop_slices_exactly_at_scale_one_and_flips_horizontally():
    frames = np.arange(2 * 6 * 8 * 3, dtype=np.uint8).reshape(2, 6, 8, 3)
    out = apply_crop(frames, Crop(1.0, 1, 2, (4, 5), flip=True))
    assert np.array_equal(out, frames[:, 1:5, 2:7][:, :, ::-1])


def test_apply_crop_resizes_bilinearly_like_half_pixel_interpolation():
    frame = np.zeros((1, 4, 4, 3), np.uint8)
    frame[:, :, 2:] = 200
    out = apply_crop(frame, Crop(2.0, 0, 0, (8, 8)))
    # Upscaling x2 with half-pixel centres: columns 0-2 dark, 3 = 1/4, 4 = 3/4, 5-7 bright.
    assert out[0, 0, :, 0].tolist() == [0, 0, 0, 50, 150, 200, 200, 200]


def test_flip_label_map_swaps_only_mapped_classes():
    spec = ClipSpec(flip_label_map={3: 4, 4: 3})
    assert [spec.flipped_label(c) for c in (2, 3, 4)] == [2, 4, 3]


def test_presets_follow_the_papers_recipes():
    kinetics, ssv2 = clip_spec("kinetics"), clip_spec("ssv2")
    assert (kinetics.sampler, kinetics.frames, kinetics.stride, kinetics.train_short) == ("dense", 8, 8, (256, 320))
    assert kinetics.views_per_video("test") == 30 and ssv2.views_per_video("test") == 6
    assert ssv2.sampler == "segment" and not ssv2.flip
    assert clip_spec("kinetics", frames=16).frames == 16


def test_synthetic_preset_swaps_mirrored_slides_and_rotations_only():
    from pipelines.data.synthetic import class_names

    names = class_names()
    swapped = {names[a]: names[b] for a, b in clip_spec("synthetic").flip_label_map.items()}
    assert swapped == {"slide_left_to_right": "slide_right_to_left", "slide_right_to_left": "slide_left_to_right",
                       "rotate_clockwise": "rotate_anticlockwise", "rotate_anticlockwise": "rotate_clockwise"}


def test_apply_crop_shrinks_a_smooth_frame_like_resizing_then_cropping():
    """A linear ramp stays a ramp: the crop of the scaled frame equals the ramp's formula (+-1)."""
    height, width, scale = 64, 96, 0.75
    y, x = np.mgrid[0:height, 0:width]
    frame = np.stack([x * 2, y * 3, x + y], axis=-1).astype(np.uint8)[None]
    out = apply_crop(frame, Crop(scale, 5, 7, (32, 40))).astype(int)
    # Output pixel (i, j) sits at source ((i + top + 0.5) / scale - 0.5, (j + left + 0.5) / scale - 0.5).
    sy = (np.arange(32) + 5 + 0.5) / scale - 0.5
    sx = (np.arange(40) + 7 + 0.5) / scale - 0.5
    expected = np.stack(np.broadcast_arrays(sx[None, :] * 2, sy[:, None] * 3, sx[None, :] + sy[:, None]), -1)
    assert np.abs(out[0] - expected).max() <= 1


def test_apply_crop_takes_the_far_corner_of_a_frame_whose_scaled_size_was_rounded_up():
    frames = np.full((2, 256, 340, 3), 90, np.uint8)
    scale = 224 / 256  # 340 * scale = 297.5, rounded to 298: the last crop ends past the frame
    out = apply_crop(frames, Crop(scale, 0, 298 - 224, (224, 224)))
    assert out.shape == (2, 224, 224, 3) and (out == 90).all()
