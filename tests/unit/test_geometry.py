import cv2
import numpy as np
import pytest

from sparkhtr.core.geometry import map_points, rotation_matrix, to_source
from sparkhtr.core.types import BBox, SegmentedLine


@pytest.mark.parametrize("angle", [-7.5, -1.0, 2.0, 10.0])
def test_to_source_inverts_the_deskew_rotation(angle):
    w, h = 400, 300
    forward, size = rotation_matrix(angle, (w, h))
    # a mark in the source page, found at its rotated place, maps back to where it was
    source_points = [(50.0, 60.0), (350.0, 60.0), (350.0, 90.0), (50.0, 90.0)]
    rotated = map_points(source_points, forward)
    line = SegmentedLine(BBox(0, 0, 1, 1), rotated, rotated[:2], np.zeros((4, 4), np.uint8))
    [back] = to_source([line], angle, size, (w, h))
    np.testing.assert_allclose(back.polygon, source_points, atol=1e-6)
    assert (back.bbox.x0, back.bbox.y0, back.bbox.x1, back.bbox.y1) == (50, 60, 350, 90)


def test_rotation_matrix_matches_warp_of_a_marked_pixel():
    image = np.zeros((100, 200), np.uint8)
    image[20, 30] = 255
    matrix, size = rotation_matrix(5.0, (200, 100))
    warped = cv2.warpAffine(image, matrix, size, flags=cv2.INTER_NEAREST)
    y, x = np.unravel_index(np.argmax(warped), warped.shape)
    [(px, py)] = map_points([(30.0, 20.0)], matrix)
    assert abs(px - x) <= 1 and abs(py - y) <= 1
    assert size[0] > 200 and size[1] > 100


def test_zero_angle_is_identity():
    line = SegmentedLine(BBox(1, 2, 3, 4), [(1.0, 2.0)], [(1.0, 2.0)], np.zeros((2, 2), np.uint8))
    assert to_source([line], 0.0, (10, 10), (10, 10)) == [line]


def test_to_source_agrees_with_preprocess_deskew():
    from sparkhtr.core.preprocess import deskew

    page = np.full((300, 500), 255, np.uint8)
    page[100:110, 200:210] = 0  # a mark centred at (205, 105) in the source
    skew = 6.0
    rotated = deskew(page, skew)  # what preprocess_page does when it measured skew_degrees=6
    ys, xs = np.nonzero(rotated < 128)
    found = [(float(xs.mean()), float(ys.mean()))]
    line = SegmentedLine(BBox(0, 0, 1, 1), found, found, np.zeros((2, 2), np.uint8))
    [back] = to_source([line], -skew, (rotated.shape[1], rotated.shape[0]), (500, 300))
    assert abs(back.polygon[0][0] - 204.5) < 1.0 and abs(back.polygon[0][1] - 104.5) < 1.0
