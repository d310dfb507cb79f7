"""What a job reads: the user's files, images and videos, checked and decoded."""
