"""sentence-transformers folders: reading their settings into an Embedder, and writing them back.

Only the files are handled here (modules.json, 1_Pooling/config.json, sentence_bert_config.json,
config_sentence_transformers.json, 2_Normalize/); `Embedder.from_pretrained` and
`Embedder.save_pretrained` (embed.py) call these. sentence-transformers itself is never imported.
"""

from __future__ import annotations

from pathlib import Path

from .errors import CheckpointError, ConfigError
from .hub import ModelSource
from .jsonio import read_json

SIMILARITY_FUNCTIONS = ("cosine", "dot", "euclidean", "manhattan")  # sentence-transformers' names

# A sentence-transformers model is a folder (or Hub repo) with modules.json listing its modules
# in order. minialbert runs the three a text-embedding ALBERT uses: Transformer (the model and
# tokenizer), Pooling and Normalize. Both layouts in use are read:
#   v2-v5: module types "sentence_transformers.models.Pooling", 1_Pooling/config.json with boolean
#          pooling_mode_*_tokens flags, max_seq_length in sentence_bert_config.json;
#   v6:    types "sentence_transformers.base.modules.transformer.Transformer" and the like,
#          "pooling_mode": "mean" (a string or a list), max length in tokenizer_config.json,
#          prompts and similarity_fn_name in config_sentence_transformers.json.

# sentence-transformers' pooling mode names -> minialbert's
ST_POOLINGS = {"cls": "cls", "max": "max", "mean": "mean", "mean_sqrt_len_tokens": "mean_sqrt_len",
               "weightedmean": "weightedmean", "lasttoken": "lasttoken"}
ST_POOLING_NAMES = {ours: theirs for theirs, ours in ST_POOLINGS.items()}
# the boolean flags of v2-v5 configs, in the order sentence-transformers concatenates the modes
ST_POOLING_FLAGS = {"pooling_mode_cls_token": "cls", "pooling_mode_max_tokens": "max",
                    "pooling_mode_mean_tokens": "mean", "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
                    "pooling_mode_weightedmean_tokens": "weightedmean", "pooling_mode_lasttoken": "lasttoken"}
ST_MODULES = ("Transformer", "Pooling", "Normalize")


def st_pooling_mode(cfg: dict, where: Path) -> str:
    """The one pooling mode of a 1_Pooling/config.json, in minialbert's name."""
    mode = cfg.get("pooling_mode")
    if mode is None:  # v2-v5 flags; none set means sentence-transformers' default, mean
        mode = [name for flag, name in ST_POOLING_FLAGS.items() if cfg.get(flag)] or "mean"
    modes = [mode] if isinstance(mode, str) else list(mode) if isinstance(mode, (list, tuple)) else None
    if not modes or not all(isinstance(m, str) for m in modes):
        raise ConfigError(f"{where}: pooling_mode must be a mode name or a list of them, got {mode!r}")
    if len(modes) > 1:
        raise ConfigError(f"{where}: pooling combines {' + '.join(modes)}; minialbert supports one pooling mode per "
                          "model, not concatenated ones")
    if modes[0] not in ST_POOLINGS:
        raise ConfigError(f"{where}: unknown pooling mode {modes[0]!r} (sentence-transformers has "
                          f"{', '.join(ST_POOLINGS)})")
    return ST_POOLINGS[modes[0]]


def st_transformer_config(source: ModelSource, path: str) -> dict:
    """max_length and lower-casing from the Transformer module's sentence_bert_config.json."""
    prefix = f"{path}/" if path else ""
    cfg_path = source.file(prefix + "sentence_bert_config.json", required=False)
    if cfg_path is None:  # the name sentence-transformers v0.x wrote for ALBERT models
        cfg_path = source.file(prefix + "sentence_albert_config.json", required=False)
    if cfg_path is None:
        return {}
    cfg = read_json(cfg_path)
    task = cfg.get("transformer_task", "feature-extraction")
    if task != "feature-extraction":
        raise ConfigError(f"{cfg_path}: transformer_task {task!r} is not supported (minialbert embeds with "
                          "the plain encoder, 'feature-extraction')")
    found: dict = {"lowercase": bool(cfg.get("do_lower_case", False))}
    # As sentence-transformers: a model_max_length given to the tokenizer wins over max_seq_length;
    # with neither, the tokenizer's own model_max_length (tokenizer_config.json) applies.
    tokenizer_kwargs = cfg.get("processor_kwargs") or cfg.get("tokenizer_args") or {}
    max_length = tokenizer_kwargs.get("model_max_length") if isinstance(tokenizer_kwargs, dict) else None
    max_length = max_length or cfg.get("max_seq_length")
    if max_length:
        found["max_length"] = int(max_length)
    return found


def read_sentence_transformers(source: ModelSource) -> dict:
    """Defaults from a sentence-transformers layout (modules.json), or {} for a plain checkpoint."""
    modules_path = source.file("modules.json", required=False)
    if modules_path is None:
        return {}
    modules = read_json(modules_path, expect=list)
    if not all(isinstance(m, dict) for m in modules):
        raise CheckpointError(f"{modules_path}: expected a list of modules")
    found: dict = {}
    st_config = source.file("config_sentence_transformers.json", required=False)
    if st_config is not None:
        cfg = read_json(st_config)
        model_type = cfg.get("model_type", "SentenceTransformer")
        if model_type != "SentenceTransformer":
            raise ConfigError(f"{source.name} is a sentence-transformers {model_type}, not a SentenceTransformer "
                              "embedding model; minialbert embeds with SentenceTransformer models only")
        prompts = cfg.get("prompts") or {}
        if not isinstance(prompts, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in prompts.items()):
            raise ConfigError(f"{st_config}: prompts must map names to texts")
        found["prompts"] = prompts
        found["default_prompt_name"] = cfg.get("default_prompt_name")
        found["similarity_fn_name"] = cfg.get("similarity_fn_name")
        if found["similarity_fn_name"] not in (None, *SIMILARITY_FUNCTIONS):
            raise ConfigError(f"{st_config}: similarity_fn_name {found['similarity_fn_name']!r} is not supported "
                              f"(minialbert has {', '.join(SIMILARITY_FUNCTIONS)})")
    for module in sorted(modules, key=lambda m: m.get("idx", 0)):
        type_name = str(module.get("type", ""))
        # "sentence_transformers.models.Pooling" (v2-v5), "...sentence_transformer.modules.pooling.Pooling" (v6)
        kind = type_name.rsplit(".", 1)[-1] if type_name.split(".", 1)[0] == "sentence_transformers" else None
        path = str(module.get("path", "")).strip("/")
        if kind == "Transformer":
            found["transformer_path"] = path
            found.update(st_transformer_config(source, path))
        elif kind == "Pooling":
            cfg_path = source.file(f"{path}/config.json")
            cfg = read_json(cfg_path)
            found["pooling"] = st_pooling_mode(cfg, cfg_path)
            found["include_prompt"] = bool(cfg.get("include_prompt", True))
            found["dimension"] = cfg.get("embedding_dimension", cfg.get("word_embedding_dimension"))
        elif kind == "Normalize":
            cfg_path = source.file(f"{path}/config.json", required=False) if path else None  # v6 writes one
            cfg = read_json(cfg_path) if cfg_path is not None else {}
            if cfg.get("module_input_name", "sentence_embedding") != "sentence_embedding":
                raise ConfigError(f"{cfg_path}: Normalize of {cfg['module_input_name']!r} is not supported "
                                  "(minialbert normalizes the sentence embedding only)")
            found["normalize"] = True
        else:
            raise ConfigError(f"{source.name}: sentence-transformers module {type_name!r} is not supported "
                              "(minialbert handles Transformer, Pooling and Normalize)")
    if "pooling" not in found:
        raise ConfigError(f"{source.name}: modules.json has no Pooling module, so the model gives no sentence "
                          "vector; minialbert needs Transformer + Pooling (+ Normalize)")
    return found


def sentence_transformers_files(embedder) -> dict[str, dict | list]:
    """The JSON files of a sentence-transformers folder recording `embedder`'s settings (an embed.Embedder;
    not imported here, so that embed.py -> st_format.py stays one-way).

    The v2-v5 module names and pooling flags are written on purpose: later versions read them
    (v6 converts them), and so does minialbert. Keys that older versions' Pooling(**config)
    would reject are written only when they matter: the weightedmean/lasttoken flags when that
    is the mode, include_prompt when it is False.
    """
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    files: dict[str, dict | list] = {}
    if embedder.normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
        files["2_Normalize/config.json"] = {}
    mode = ST_POOLING_NAMES[embedder.pooling]
    files["modules.json"] = modules
    files["sentence_bert_config.json"] = {"max_seq_length": embedder.max_length, "do_lower_case": embedder.lowercase}
    files["1_Pooling/config.json"] = {
        "word_embedding_dimension": embedder.dim,
        **{flag: name == mode for flag, name in ST_POOLING_FLAGS.items()
           if name in ("cls", "max", "mean", "mean_sqrt_len_tokens") or name == mode},
        **({} if embedder.include_prompt else {"include_prompt": False}),
    }
    files["config_sentence_transformers.json"] = {
        "model_type": "SentenceTransformer",
        "prompts": embedder.prompts,
        "default_prompt_name": embedder.default_prompt_name,
        "similarity_fn_name": embedder.similarity_fn_name,
    }
    return files
