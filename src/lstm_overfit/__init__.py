"""lstm-overfit: puts the claims of "Why is my simple LSTM not overfitting?" to a measured test."""
