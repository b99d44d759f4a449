# make demo: set up and run FCN-8s on the built-in synthetic data.  make test: set up and run the tests but the
# 46 slowest (617 tests, about 3.5 minutes on 2 cores); make test-all: all 663, as CI runs them (about 8 minutes).
# make demo-voc: fine-tune the demo's model on synthetic scenes in the PASCAL VOC layout (runs make demo first if needed).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO := demo
# the network and its training, shared: demo-voc starts from the demo's checkpoints
DEMO_COMMON := --model_dir=$(DEMO)/Model_zoo/ --fc_width=64 --image_size=64 --batch_size=8 --learning_rate=1e-3
DEMO_FLAGS := --data_dir=$(DEMO)/Data_zoo/MIT_SceneParsing/ --logs_dir=$(DEMO)/logs/ $(DEMO_COMMON)
DEMO_VOC_FLAGS := --dataset=voc --data_dir=$(DEMO)/Data_zoo/VOC/ --logs_dir=$(DEMO)/logs_voc/ $(DEMO_COMMON)

.PHONY: demo demo-voc test test-all venv venv-export clean

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -r requirements.txt
	touch $@

venv: $(VENV)/.installed

# the optional extras (export converters and runtimes, video: imageio-ffmpeg), so the tests cover them; make demo does without
$(VENV)/.export-installed: requirements-export.txt $(VENV)/.installed
	$(PY) -m pip install -r requirements-export.txt
	touch $@

venv-export: $(VENV)/.export-installed

demo: venv
	rm -rf $(DEMO)
	$(PY) demo_data.py --out_dir=$(DEMO)
	@echo "== before training =="
	$(PY) FCN.py --mode=evaluate $(DEMO_FLAGS)
	$(PY) FCN.py --mode=train $(DEMO_FLAGS) --max_iteration=301 --save_every=100 --log_every=20
	@echo "== after training =="
	$(PY) FCN.py --mode=evaluate $(DEMO_FLAGS)
	$(PY) FCN.py --mode=visualize $(DEMO_FLAGS)
	@echo "Pictures in $(DEMO)/logs/ (compare_*.png); TensorBoard: $(PY) -m tensorboard.main --logdir $(DEMO)/logs"

$(DEMO)/logs/checkpoint:
	$(MAKE) demo

demo-voc: venv $(DEMO)/logs/checkpoint
	rm -rf $(DEMO)/Data_zoo/VOC $(DEMO)/logs_voc
	$(PY) demo_data.py --out_dir=$(DEMO) --dataset=voc
	@echo "== before fine-tuning: the ADE20K demo's network, new VOC class layers =="
	$(PY) FCN.py --mode=evaluate $(DEMO_VOC_FLAGS) --init_checkpoint=$(DEMO)/logs/
	$(PY) FCN.py --mode=train $(DEMO_VOC_FLAGS) --init_checkpoint=$(DEMO)/logs/ --max_iteration=201 --save_every=100 \
		--log_every=20
	@echo "== after fine-tuning =="
	$(PY) FCN.py --mode=evaluate $(DEMO_VOC_FLAGS)
	$(PY) FCN.py --mode=visualize $(DEMO_VOC_FLAGS)
	@echo "Pictures in $(DEMO)/logs_voc/ (compare_*.png, VOC colours, borders 255 in cream)"

test: venv-export
	$(PY) -m pytest -q -n auto -m "not slow" tests

test-all: venv-export
	$(PY) -m pytest -q -n auto tests

clean:
	rm -rf $(DEMO) .pytest_cache benchmark.json
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
