"""The tutorial's RNN text classifier: is a review sentence positive or negative?

    Embedding -> RNN (LSTM or GRU with --cell) -> Linear(hidden, 1) on the last
    step's output, binary cross-entropy with logits, Adam.

Data: the 3,000 labelled sentences of ../shared/data/sentiment (IMDB, Yelp,
Amazon). A seeded 80/20 split holds out 600 sentences; a fifth of the other
2,400 is the validation part on which early stopping picks the epoch (its
weights are restored at the end). The vocabulary comes from the training
part only. Sentences are padded on the left, so the last step reads a word.

    python examples/text_rnn.py [--cell lstm|gru] [--epochs 20] [--limit 500]
"""
import os
import time

import numpy as np

import graphc as gc
import graphc.nn as nn
from _common import EVAL_BATCH, limited, loaders, parse, parser, report, require, run

SOURCES = ("imdb_labelled.txt", "yelp_labelled.txt", "amazon_labelled.txt")
CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class TextRNN(nn.Module):
    def __init__(self, vocab_size, embed_dim, hidden_dim, cell="rnn"):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.rnn = CELLS[cell](embed_dim, hidden_dim, batch_first=True)
        self.fc = nn.Linear(hidden_dim, 1)

    def forward(self, text):
        embedded = self.embedding(text)             # (N, L, embed_dim)
        output, _ = self.rnn(embedded)              # (N, L, hidden_dim)
        return self.fc(output[:, -1, :])            # (N, 1) logits


def left_padded(ids, lengths):
    """Each row's tokens moved to its end (the padding first)."""
    out = np.zeros_like(ids)
    for row, n in enumerate(lengths):
        out[row, ids.shape[1] - n:] = ids[row, :n]
    return out


def sentences(folder, seed, limit):
    """(texts, labels) of the train, validation and held-out parts."""
    paths = [require(os.path.join(folder, "sentiment", name), "data file") for name in SOURCES]
    texts, labels = gc.data.load_labelled_sentences(paths, num_classes=2)
    texts = np.array(texts, dtype=object)
    rest, test = gc.data.random_split((texts, labels), [0.8, 0.2], seed=seed)
    train, val = gc.data.random_split(rest, [0.8, 0.2], seed=seed + 1)
    return [limited(*part[:], limit, held_out)
            for part, held_out in ((train, False), (val, True), (test, True))]


def encoded(vocab, texts, labels, max_len):
    ids = vocab.encode(texts, max_len)
    return left_padded(ids, vocab.lengths(texts, max_len)), labels


def train(args):
    start = time.perf_counter()
    gc.manual_seed(args.seed)
    (train_texts, train_y), val, test = sentences(args.data, args.seed, args.limit)
    vocab = gc.data.Vocabulary.build(train_texts, min_freq=args.min_freq)
    print(f"{len(train_y)} training sentences, {len(val[1])} for validation, "
          f"{len(test[1])} held out; a vocabulary of {len(vocab)} tokens")
    train_set = encoded(vocab, train_texts, train_y, args.max_len)
    val_set, test_set = (encoded(vocab, *part, args.max_len) for part in (val, test))
    train_loader, test_loader = loaders(train_set, test_set, args.batch_size, args.seed)
    val_loader = gc.data.DataLoader(val_set, batch_size=EVAL_BATCH)

    model = TextRNN(len(vocab), args.embed_dim, args.hidden_dim, args.cell)
    criterion = gc.nn.binary_cross_entropy_with_logits
    optimizer = gc.optim.Adam(model.parameters(), lr=args.lr)
    trainer = gc.train.Trainer(model, criterion, optimizer, device=args.device)
    stopping = gc.train.EarlyStopping("accuracy", patience=args.patience)
    trainer.fit(train_loader, epochs=args.epochs, val_loader=val_loader,
                early_stopping=stopping)
    print(f"early stopping kept epoch {stopping.best_epoch} "
          f"(validation accuracy {stopping.best:.4f})")
    return dict(report(trainer.evaluate(test_loader), time.perf_counter() - start),
                best_epoch=stopping.best_epoch)


def main(argv=None):
    p = parser(__doc__.splitlines()[0], epochs=20, batch_size=32, lr=0.002)
    p.add_argument("--cell", choices=tuple(CELLS), default="rnn", help="recurrent layer")
    p.add_argument("--embed-dim", type=int, default=100, help="embedding size (default 100)")
    p.add_argument("--hidden-dim", type=int, default=64, help="hidden size (default 64)")
    p.add_argument("--max-len", type=int, default=24, help="tokens kept per sentence")
    p.add_argument("--min-freq", type=int, default=2, help="rarer tokens are <unk> (default 2)")
    p.add_argument("--patience", type=int, default=3, help="early stopping's patience")
    args = parse(p, argv, ("epochs", "batch_size", "limit", "embed_dim", "hidden_dim",
                           "max_len", "min_freq"))
    return run(train, args)


if __name__ == "__main__":
    main()
