"""Writes small stand-ins for the real downloads (fcn_tensorflow/data/demo.py), for `make demo`: a narrow VGG19 file
in the MatConvNet beta16 layout and synthetic scenes in the ADE20K or PASCAL VOC layout.

    python demo_data.py --out_dir=demo      # demo/Model_zoo/*.mat and demo/Data_zoo/MIT_SceneParsing/
    python demo_data.py --out_dir=demo --dataset=voc                  # and demo/Data_zoo/VOC/VOCdevkit/
"""
import argparse
import os

from fcn_tensorflow.data import matconvnet
from fcn_tensorflow.data.demo import write_scene_dataset, write_vgg_mat, write_voc_dataset


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out_dir", default="demo", help="where to write Model_zoo/ and Data_zoo/")
    parser.add_argument("--dataset", default="ade20k", choices=("ade20k", "voc"),
                        help="the layout: Data_zoo/MIT_SceneParsing/ADEChallengeData2016 or Data_zoo/VOC/VOCdevkit")
    parser.add_argument("--num_training", type=int, default=200)
    parser.add_argument("--num_validation", type=int, default=40)
    parser.add_argument("--widths", default="8,16,32,64,64", help="channels of the five VGG blocks")
    parser.add_argument("--fc_width", type=int, default=64)
    args = parser.parse_args()
    widths = tuple(int(width) for width in args.widths.split(","))
    mat = os.path.join(args.out_dir, "Model_zoo", matconvnet.MODEL_FILE)
    if not os.path.exists(mat):
        write_vgg_mat(mat, widths, args.fc_width)
    if args.dataset == "voc":
        data = os.path.join(args.out_dir, "Data_zoo", "VOC")
        write_voc_dataset(data, args.num_training, args.num_validation, seed=1)
    else:
        data = write_scene_dataset(os.path.join(args.out_dir, "Data_zoo", "MIT_SceneParsing"),
                                   args.num_training, args.num_validation)
    print("Wrote %s and %s" % (mat, data))


if __name__ == "__main__":
    main()
